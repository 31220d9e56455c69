"""The rating screen: the raters' queue (queue, floor, rules), the judge page's reads (page),
the rater's history and keys, and their views. Built on consensus and the base modules;
nothing below imports it."""
