"""The `eval` glue: join decisions to outcomes, drop incomplete prompts, input errors, files written."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features import schema
from pipelines.evaluation import (
    CURVES_FILE,
    REPORT_FILE,
    EvaluationInputError,
    evaluate,
    load_decisions,
    run_eval,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# docs/metrics.md worked example: true quality (strong, weak) per prompt; strong costs .02, weak .01.
EXAMPLE = {"p1": (1.0, 0.0), "p2": (1.0, 1.0), "p3": (1.0, 0.0), "p4": (0.0, 0.0)}
PRED_GAP = {"p1": 0.4, "p2": 0.3, "p3": 0.1, "p4": 0.2}  # q̂s − q̂w, with ĉs − ĉw = 2 − 1


def _row(prompt_id: str, model: str, quality: float | None, cost: float | None) -> dict[str, Any]:
    return {
        schema.PROMPT_ID: prompt_id,
        schema.PROMPT: f"prompt {prompt_id}",
        schema.TASK: "qa",
        schema.MODEL: model,
        schema.QUALITY: quality,
        schema.COST_USD: cost,
        schema.COST_SOURCE: schema.COST_RECORDED,
        schema.INPUT_TOKENS: 10,
        schema.OUTPUT_TOKENS: 20,
        schema.LATENCY_MS: 100.0,
        schema.RESPONSE: "answer",
        schema.SOURCE: "test",
        schema.SPLIT: schema.TEST,
        schema.PROPENSITY: None,
        schema.ROUTER_VERSION: None,
        schema.OBSERVED_AT: datetime(2025, 1, 1, tzinfo=UTC),
    }


def _table(extra: list[dict[str, Any]] | None = None) -> pa.Table:
    rows = []
    for prompt_id, (strong, weak) in EXAMPLE.items():
        rows.append(_row(prompt_id, "strong", strong, 0.02))
        rows.append(_row(prompt_id, "weak", weak, 0.01))
    return pa.Table.from_pylist(rows + (extra or []), schema=schema.OUTCOME_SCHEMA)


def _decision(prompt_id: str, gap: float = 0.25, model: str | None = None) -> dict[str, Any]:
    chosen = model or ("strong" if gap > 0.25 else "weak")
    return {
        "id": prompt_id,
        "model": chosen,
        "quality": {"strong": 0.5 + gap, "weak": 0.5},
        "cost": {"strong": 2.0, "weak": 1.0},
    }


def _decisions() -> list[dict[str, Any]]:
    return [_decision(prompt_id, gap) for prompt_id, gap in PRED_GAP.items()]


def test_evaluate_scores_the_worked_example() -> None:
    report = evaluate(_table(), _decisions())
    assert report["schema_version"] == 1
    assert report["prompts"] == {
        "decisions": 4,
        "evaluated": 4,
        "dropped": 0,
        "dropped_by_reason": {"missing_outcome": 0, "missing_quality": 0, "missing_cost": 0},
    }
    assert report["candidates"] == ["strong", "weak"]
    summary = report["summary"]
    assert summary["router_aiq"] == pytest.approx(0.28125)  # see tests/routers/test_metrics_report.py
    assert summary["zero_router_aiq"] == pytest.approx(0.25)
    assert summary["oracle_aiq"] == pytest.approx(0.3125)
    assert summary["apgr"] == pytest.approx(0.55)
    # decisions (λ* > .25 → strong: p1, p2): quality (1 + 1 + 0 + 0)/4, cost (.02·2 + .01·2)/4
    assert (summary["decision_quality"], summary["decision_cost"]) == (0.5, pytest.approx(0.015))


def test_incomplete_prompts_are_dropped_and_counted() -> None:
    extra = [
        _row("p5", "strong", 1.0, 0.02),  # no weak row at all
        _row("p6", "strong", None, 0.02),  # unknown quality
        _row("p6", "weak", 0.0, 0.01),
        _row("p7", "strong", 1.0, 0.02),
        _row("p7", "weak", 0.0, None),  # unknown cost
        _row("p8", "strong", None, None),  # both unknown and a missing row: counted once, as missing_outcome
    ]
    decisions = [*_decisions(), *(_decision(p, 0.9) for p in ("p5", "p6", "p7", "p8"))]
    report = evaluate(_table(extra), decisions)
    assert report["prompts"] == {
        "decisions": 8,
        "evaluated": 4,
        "dropped": 4,
        "dropped_by_reason": {"missing_outcome": 2, "missing_quality": 1, "missing_cost": 1},
    }
    assert report["summary"]["prompts_dropped"] == 4
    assert report["router"]["aiq"] == pytest.approx(0.28125)  # the same four prompts as the worked example


def test_pandas_input_and_repeated_observations() -> None:
    # A second observation of (p4, strong) with quality 1 averages to .5: strong's mean becomes
    # (1 + 1 + 1 + .5)/4 = .875 and its cost stays .02.
    table = _table([_row("p4", "strong", 1.0, 0.02)])
    report = evaluate(table.to_pandas(), _decisions())
    assert report["single_models"]["strong"] == {"cost": pytest.approx(0.02), "quality": pytest.approx(0.875)}
    assert report["single_models"]["weak"] == {"cost": pytest.approx(0.01), "quality": pytest.approx(0.25)}


@pytest.mark.parametrize(
    ("decisions", "message"),
    [
        ([_decision("nope")], "'nope' is not a prompt_id"),
        ([{**_decision("p1"), "model": "other"}], "chosen model 'other' is not among the candidates"),
        (
            [{"id": "p1", "model": "x", "quality": {"x": 0.5}, "cost": {"x": 1.0}}],
            "never saw",
        ),
        ([_decision("p1"), {**_decision("p2"), "quality": {"strong": 0.5}}], "'cost' names"),
        (
            [
                _decision("p1"),
                {"id": "p2", "model": "strong", "quality": {"strong": 1.0}, "cost": {"strong": 1.0}},
            ],
            "every decision must score the same candidates",
        ),
        ([_decision("p1"), _decision("p1")], "decided twice"),
        ([{**_decision("p1"), "cost": {"strong": float("nan"), "weak": 1.0}}], "finite number"),
        ([{**_decision("p1"), "quality": {"strong": True, "weak": 0.5}}], "finite number"),
        ([{"model": "strong"}], "'id' and 'model' must be strings"),
        (["p1"], "expected a JSON object"),
        ([], "no decisions"),
    ],
)
def test_bad_decisions_raise_one_line_value_errors(decisions: list[Any], message: str) -> None:
    with pytest.raises(EvaluationInputError, match=message) as caught:
        evaluate(_table(), decisions)
    assert isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)


def test_no_complete_prompt_is_an_error() -> None:
    table = pa.Table.from_pylist(
        [_row("p1", "strong", None, 0.02), _row("p1", "weak", 0.5, 0.01)], schema=schema.OUTCOME_SCHEMA
    )
    with pytest.raises(EvaluationInputError, match="no decided prompt has a known quality and cost"):
        evaluate(table, [_decision("p1")])


def test_outcomes_without_needed_columns() -> None:
    with pytest.raises(EvaluationInputError, match=r"lacks columns \['cost_usd'\]"):
        evaluate(_table().drop_columns([schema.COST_USD]), _decisions())
    with pytest.raises(EvaluationInputError, match="pyarrow Table or a pandas DataFrame"):
        evaluate([1, 2], _decisions())


def _write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    outcomes = tmp_path / "outcomes.parquet"
    pq.write_table(_table(), outcomes)
    decisions = tmp_path / "decisions.jsonl"
    lines = [json.dumps(d) for d in _decisions()]
    decisions.write_text("\n".join([lines[0], "", *lines[1:]]) + "\n", encoding="utf-8")  # a blank line is skipped
    return outcomes, decisions


def test_run_eval_writes_report_and_figure(tmp_path: Path) -> None:
    outcomes, decisions = _write_inputs(tmp_path)
    out = tmp_path / "eval"
    report = run_eval(outcomes, decisions, out)
    assert (out / CURVES_FILE).read_bytes().startswith(PNG_SIGNATURE)
    assert (out / CURVES_FILE).stat().st_size > 10_000
    written = json.loads((out / REPORT_FILE).read_text(encoding="utf-8"))
    assert written == report
    assert written["prompts"]["evaluated"] == 4
    assert written["router"]["aiq"] == pytest.approx(0.28125)
    assert written["router"]["cost_saving_at_95pct_quality"] == pytest.approx(0.05625)  # 1 − .018875/.02
    assert written["two_model"]["cpt_80"] == pytest.approx(0.9)
    assert written["random"]["quality"] == pytest.approx(0.5)
    assert written["oracle"]["cost"] == pytest.approx(0.015)


def test_run_eval_input_errors(tmp_path: Path) -> None:
    outcomes, decisions = _write_inputs(tmp_path)
    out = tmp_path / "eval"
    with pytest.raises(EvaluationInputError, match="does not exist"):
        run_eval(tmp_path / "missing.parquet", decisions, out)
    with pytest.raises(EvaluationInputError, match="does not exist"):
        run_eval(outcomes, tmp_path / "missing.jsonl", out)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(_decision("p1")) + "\n" + '{"id": "p2",\n', encoding="utf-8")
    with pytest.raises(EvaluationInputError, match=r"broken\.jsonl line 2: not valid JSON"):
        run_eval(outcomes, broken, out)
    not_parquet = tmp_path / "outcomes.txt"
    not_parquet.write_text("prompt_id,model\n", encoding="utf-8")
    with pytest.raises(EvaluationInputError, match="cannot read outcome table"):
        run_eval(not_parquet, decisions, out)
    assert not out.exists()


def test_load_decisions_names_the_line_of_a_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    path.write_text("\n" + json.dumps(_decision("p1")) + "\n" + json.dumps({"id": 3}) + "\n", encoding="utf-8")
    with pytest.raises(EvaluationInputError, match=r"decisions\.jsonl line 3: 'id' and 'model' must be strings"):
        load_decisions(path)
