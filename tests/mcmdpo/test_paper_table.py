"""paper_table --quick: every row and column, finite numbers, and training on the task helps.

The ordering of the methods is what the full table measures (README); it is not asserted here.
"""

import json
import math

import pytest

from modeltrain.mcmdpo import paper_table


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    work = tmp_path_factory.mktemp("paper-table")
    return paper_table.run_table(paper_table.QUICK, work, log=lambda _: None)


def test_table_has_every_method_and_metric_with_finite_numbers(quick):
    rows = quick["summary"]
    assert set(paper_table.MAIN_ROWS) <= set(rows)
    assert {"untrained", "SFT stage"} <= set(rows)
    for name, columns in rows.items():
        assert set(columns) == set(paper_table.COLUMNS), name
        for column, stats in columns.items():
            assert all(math.isfinite(stats[k]) for k in ("mean", "sd", "min", "max")), (
                name,
                column,
            )
    assert set(quick["ordering"]) == {"ROUGE-L", "CIDEr"}
    text = paper_table.format_table(quick)
    for name in (*paper_table.MAIN_ROWS, *paper_table.COLUMNS):
        assert name in text


def test_sft_writes_better_alt_text_than_the_untrained_model(quick):
    rows = quick["summary"]
    for metric in ("ROUGE-L", "CIDEr", "BLEU-1"):
        assert rows["SFT stage"][metric]["mean"] > rows["untrained"][metric]["mean"] + 10, metric
    # Margins are measured against the SFT-stage model: zero for that model itself.
    for dim in ("response", "image", "context"):
        assert rows["SFT stage"][f"margin_{dim}"]["mean"] == pytest.approx(0.0, abs=1e-4)
    # Preference training moved the preference rows away from their starting point.
    for name in ("SFT -> DPO", "SFT -> MCM-DPO"):
        assert rows[name]["margin_response"]["mean"] != 0.0
    examples = quick["per_seed"][0]["SFT stage"]["examples"]
    assert examples and all(e["generated"] for e in examples)


def test_summary_is_mean_and_sd_over_seeds():
    row = {c: 0.0 for c in paper_table.COLUMNS}
    per_seed = [
        {name: {**row, "ROUGE-L": value + k} for k, name in enumerate(paper_table.MAIN_ROWS)}
        for value in (10.0, 12.0, 14.0)
    ]
    summary = paper_table.summarise(per_seed)
    assert summary["SFT"]["ROUGE-L"]["mean"] == pytest.approx(12.0)
    assert summary["SFT"]["ROUGE-L"]["sd"] == pytest.approx(2.0)
    check = paper_table.ordering(per_seed)["ROUGE-L"]
    assert check["means_ordered"] and not check["ranges_disjoint"]


def test_cli_refuses_zero_seeds(capsys):
    with pytest.raises(SystemExit):
        paper_table.main(["--seeds", "0"])
    assert "--seeds must be at least 1" in capsys.readouterr().err


def test_json_output_is_one_document(quick):
    dumped = json.dumps(paper_table._jsonable(quick))
    assert (
        json.loads(dumped)["summary"]["SFT"]["ROUGE-L"]["mean"]
        == quick["summary"]["SFT"]["ROUGE-L"]["mean"]
    )
