"""A rater's keyboard shortcuts (on/off, remapped: WCAG 2.1.4) and daily goal.

Stored per user in RaterSettings and copied into the session at sign-in and on save: the judge
screen reads them from the session it has loaded anyway, so the rating path gains no query.
static/js/keys.js reads the same action names from the page (`data-keys` on #key-settings).
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver

from core.errors import ApplicationError

from ..models import RaterSettings

# action -> (default key, what it does). A choice key pressed with Shift applies that choice
# to the current facet and every facet after it ("A for all": Shift+1, then Enter).
DEFAULT_KEYS: dict[str, tuple[str, str]] = {
    "choose_a": ("1", "A is better on the current facet"),
    "choose_b": ("2", "B is better on the current facet"),
    "choose_tie": ("3", "Tie on the current facet"),
    "choose_bad": ("4", "Both bad on the current facet"),
    "next_row": ("j", "Next facet"),
    "prev_row": ("k", "Previous facet"),
    "skip": ("s", "Skip this item"),
    "undo": ("u", "Undo your last submission"),
    "hear_a": ("h", "Hear alt-text A as a screen reader would"),
    "hear_b": ("b", "Hear alt-text B as a screen reader would"),
    "zoom": ("z", "Zoom the image"),
    "help": ("?", "Show the list of keys"),
}
CHOICE_ACTIONS = ("choose_a", "choose_b", "choose_tie", "choose_bad")
SESSION_KEY = "rater_settings"
MAX_DAILY_GOAL = 100_000


def _allowed(key: str) -> bool:
    # One printable, non-space character: letters and digits are matched by their physical key
    # (so Shift+choice works on any layout), punctuation by the character it types.
    return len(key) == 1 and key.isprintable() and not key.isspace()


def keymap_clean(raw: dict[str, str]) -> dict[str, str]:
    """The full keymap (every action) from a rater's choices, or ApplicationError saying what is
    wrong: unknown action, a key that is not one character, or one key for two actions (letters
    compared without case, since Shift+letter is the same key)."""
    unknown = sorted(set(raw) - set(DEFAULT_KEYS))
    if unknown:
        raise ApplicationError("Unknown shortcut: " + ", ".join(unknown) + ".")
    keys = {
        action: (raw.get(action) or default).strip()
        for action, (default, _) in DEFAULT_KEYS.items()
    }
    bad = [DEFAULT_KEYS[a][1] for a, k in keys.items() if not _allowed(k)]
    if bad:
        raise ApplicationError(
            "Use one character (letter, digit or sign) for: " + "; ".join(bad) + "."
        )
    seen: dict[str, str] = {}
    for action, key in keys.items():
        other = seen.setdefault(key.lower(), action)
        if other != action:
            raise ApplicationError(
                f'"{key}" is used twice: {DEFAULT_KEYS[other][1]} and {DEFAULT_KEYS[action][1]}.'
            )
    for action in CHOICE_ACTIONS:
        if not keys[action].isalnum():
            raise ApplicationError(
                "Answer keys must be letters or digits (Shift with them applies to every facet)."
            )
    return keys


def rater_settings_dict(settings: RaterSettings | None) -> dict:
    """What the pages need, as stored in the session."""
    if settings is None:
        return {"enabled": True, "keys": {a: d for a, (d, _) in DEFAULT_KEYS.items()}, "goal": None}
    return {
        "enabled": settings.shortcuts_enabled,
        "keys": keymap_clean(settings.keymap or {}),
        "goal": settings.daily_goal,
    }


def rater_settings_get(*, request) -> dict:
    """The signed-in rater's settings: from the session, else from the database (then cached
    in the session)."""
    cached = request.session.get(SESSION_KEY)
    if cached is None:
        cached = rater_settings_dict(RaterSettings.objects.filter(user=request.user).first())
        request.session[SESSION_KEY] = cached
    return cached


def rater_settings_save(
    *, request, enabled: bool, keymap: dict[str, str], daily_goal: int | None
) -> dict:
    """Validate and store the rater's settings; the session copy follows."""
    keys = keymap_clean(keymap)
    if daily_goal is not None and not (1 <= daily_goal <= MAX_DAILY_GOAL):
        raise ApplicationError(f"The daily goal is a number of items from 1 to {MAX_DAILY_GOAL}.")
    changed = {a: k for a, k in keys.items() if k != DEFAULT_KEYS[a][0]}
    with transaction.atomic():
        settings, _ = RaterSettings.objects.update_or_create(
            user=request.user,
            defaults={"shortcuts_enabled": enabled, "keymap": changed, "daily_goal": daily_goal},
        )
    request.session[SESSION_KEY] = rater_settings_dict(settings)
    return request.session[SESSION_KEY]


@receiver(user_logged_in)
def _settings_into_session(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = rater_settings_dict(
            RaterSettings.objects.filter(user=user).first()
        )
