"""The model card's tables from scores.json: each base model against the small model of its kind and scale."""

from benchmarks.eval_weights import DEGRADATIONS, DEGRADED_SETS, size_gain_table


def records(model: str, scale: int, psnr: float) -> list[dict]:
    return [
        {"model": model, "scale": scale, "set": s, "degradation": d, "psnr": psnr + 0.1 * i, "ssim": 0.9}
        for i, s in enumerate(DEGRADED_SETS)
        for d in DEGRADATIONS
    ]


def test_each_base_model_is_set_against_the_small_model_of_its_kind_and_scale():
    rows = (
        records("repsr-real-base-x4", 4, 25.5)
        + records("repsr-real-x4", 4, 25.2)
        + records("repsr-real-x2", 2, 29.0)  # another scale: not its partner
        + records("repsr-sharp-base-x4", 4, 24.0)  # no small sharp model scored: no row
    )
    lines = size_gain_table(rows)
    assert len(lines) == 3  # header, rule, one row
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:3] == ["repsr-real-base-x4", "repsr-real-x4", "x4"]
    assert cells[3:] == ["+0.30 / +0.30"] * len(DEGRADATIONS)


def test_a_base_model_worse_than_the_small_one_shows_a_negative_gain():
    lines = size_gain_table(records("repsr-sharp-base-x2", 2, 28.0) + records("repsr-sharp-x2", 2, 28.25))
    assert lines[2].count("-0.25 / -0.25") == len(DEGRADATIONS)


def test_rescoring_some_models_replaces_their_records_in_place():
    from benchmarks.eval_weights import merged

    kept = records("repsr-real-x4", 4, 25.0) + records("repsr-sharp-x4", 4, 24.0)
    scored = records("bicubic", 4, 20.0) + records("repsr-sharp-x4", 4, 24.5) + records("repsr-new-x4", 4, 23.0)
    out = merged(kept, scored, {"repsr-sharp-x4", "repsr-new-x4"})
    assert [r["model"] for r in out[: len(kept)]] == [r["model"] for r in kept]  # the order the tables follow
    assert {r["psnr"] for r in out if r["model"] == "repsr-sharp-x4"} == {24.5, 24.6}
    assert [r for r in out if r["model"] == "repsr-real-x4"] == kept[: len(kept) // 2]
    assert sum(r["model"] == "repsr-new-x4" for r in out) == len(DEGRADED_SETS) * len(DEGRADATIONS)
    assert not any(r["model"] == "bicubic" for r in out)
