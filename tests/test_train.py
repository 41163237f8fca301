"""Training: exact resume, schedule, data checks before training, eval/plot outputs, DDP on CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repsr_cli.data.dataset import load_pairs
from repsr_cli.data.resize import downscale
from repsr_cli.errors import UserError
from repsr_cli.formats.checkpoint import (
    check_resumable,
    lineage_head,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from repsr_cli.train.config import TrainConfig, replayed
from repsr_cli.train.runlog import median_rate, summarize
from repsr_cli.train.trainer import Trainer

from .conftest import cli, run_cli, shared_path, synthetic_image, tiny_config
from .test_bad_input import one_line_error

config = tiny_config


def train_args(data: Path, out: Path, iters: int, *extra: str) -> list[str]:
    """`repsr train` arguments for a tiny x2 run on the synthetic images."""
    return [
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--scale",
        "2",
        "--iters",
        str(iters),
        "--batch",
        "2",
        "--patch",
        "12",
        *extra,
    ]


def _flat_tensors(obj: object, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in nested dicts and lists, by its path: model, EMA, discriminator, optimizers alike."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list | tuple) else []
    return {k: v for key, value in items for k, v in _flat_tensors(value, f"{prefix}/{key}").items()}


@pytest.mark.parametrize(("degradation", "loss"), [("bicubic", "l1"), ("real", "l1"), ("bicubic", "sharp")])
def test_resume_is_bit_identical(tmp_path: Path, image_folder: Path, degradation: str, loss: str) -> None:
    """Also with realistic degradations (blur, noise, JPEG, H.264/H.265 through ffmpeg): they draw only from
    the batch's generator, so a resumed run sees the batches an uninterrupted one would, and batches made
    ahead by worker threads are the same batches. An adversarial recipe's generator EMA, discriminator and
    its optimizer are in the checkpoint too."""
    options = {"degradation": degradation, "loss": loss}
    Trainer(config(image_folder, tmp_path / "a", **options)).run()
    first = Trainer(config(image_folder, tmp_path / "b", **options)).run(stop_at=5)
    assert first.iteration == 5 and not first.finished
    second = Trainer(config(image_folder, tmp_path / "b"), resume=True, data_workers=2).run()
    assert second.finished
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.pth", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pth", weights_only=True)
    assert a["iter"] == b["iter"] == 10
    tensors_a, tensors_b = _flat_tensors(a), _flat_tensors(b)
    assert tensors_a.keys() == tensors_b.keys()
    assert ("/ema/body.0.weight" in tensors_a) == (loss == "sharp")
    assert any(k.startswith("/objective/discriminator/") for k in tensors_a) == (loss == "sharp")
    for key in tensors_a:
        assert torch.equal(tensors_a[key], tensors_b[key]), key
    log_a = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]
    if loss == "sharp":
        assert [r["loss_d_fake"] for r in log_a] == [r["loss_d_fake"] for r in log_b]
    # A different seed is a different run: the comparison above can fail.
    Trainer(config(image_folder, tmp_path / "c", seed=1, **options)).run()
    c = torch.load(tmp_path / "c" / "checkpoints" / "last.pth", weights_only=True)
    assert not torch.equal(a["model"]["body.0.weight"], c["model"]["body.0.weight"])


STEADY = {"schedule": "constant", "warmup": 2}


@pytest.mark.parametrize(("bn_switch", "loss"), [(0, "sharp"), (3, "l1")])
def test_a_run_lengthened_on_resume_is_the_longer_run_from_the_start(
    tmp_path: Path, image_folder: Path, bn_switch: int, loss: str
) -> None:
    """A schedule that does not scale with the run's length (the BN switch at a fixed iteration, or at the
    start as in a sharp fine-tune) lets a finished run go on: bit-identical to planning the longer run at
    once, the sharp recipe's EMA and discriminator included."""
    steady = {**STEADY, "bn_switch": bn_switch, "loss": loss}
    Trainer(config(image_folder, tmp_path / "a", **steady)).run()
    assert Trainer(config(image_folder, tmp_path / "b", iters=6, **steady)).run().finished
    assert Trainer(config(image_folder, tmp_path / "b"), resume=True, given={"iters"}).run().finished
    a = _flat_tensors(torch.load(tmp_path / "a" / "checkpoints" / "last.pth", weights_only=True))
    b = _flat_tensors(torch.load(tmp_path / "b" / "checkpoints" / "last.pth", weights_only=True))
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert json.loads((tmp_path / "b" / "config.json").read_text())["iters"] == 10


@pytest.mark.parametrize(
    ("options", "iters", "message"),
    [
        ({}, 10, "would change the learning rate"),  # cosine
        ({**STEADY, "bn_switch": 0.5}, 10, "would move the BN switch"),  # at 3 of 6, at 5 of 10
        (STEADY, 4, "the run is at iteration 6 already"),
    ],
)
def test_a_new_length_that_would_change_steps_taken_is_refused(
    tmp_path: Path, image_folder: Path, options: dict, iters: int, message: str
) -> None:
    Trainer(config(image_folder, tmp_path, iters=6, **options)).run()
    with pytest.raises(UserError, match=message):
        Trainer(config(image_folder, tmp_path, iters=iters), resume=True, given={"iters"})


def test_one_trainer_run_in_slices_is_the_run_in_one_go(tmp_path: Path, image_folder: Path) -> None:
    """What the sharp search does to keep checkpoints along a run without reloading the data each time."""
    Trainer(config(image_folder, tmp_path / "a")).run()
    trainer = Trainer(config(image_folder, tmp_path / "b"))
    assert [trainer.run(stop_at=k).iteration for k in (3, 7, 10)] == [3, 7, 10]
    a = _flat_tensors(torch.load(tmp_path / "a" / "checkpoints" / "last.pth", weights_only=True))
    b = _flat_tensors(torch.load(tmp_path / "b" / "checkpoints" / "last.pth", weights_only=True))
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert (tmp_path / "a" / "log.jsonl").read_text().count("\n") == (tmp_path / "b" / "log.jsonl").read_text().count(
        "\n"
    )


def test_bn_switch_happens_at_the_planned_iteration(tmp_path: Path, image_folder: Path) -> None:
    Trainer(config(image_folder, tmp_path, bn_switch=7)).run()
    phases = [json.loads(x)["bn"] for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert phases == ["batch"] * 7 + ["population"] * 3


def test_every_log_record_names_the_threads_behind_its_speed(tmp_path: Path, image_folder: Path) -> None:
    Trainer(config(image_folder, tmp_path)).run()
    records = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert {r["threads"] for r in records} == {torch.get_num_threads()}


def test_init_from_takes_the_body_and_starts_its_own_bn_switch(tmp_path: Path, image_folder: Path) -> None:
    Trainer(config(image_folder, tmp_path / "x2")).run()
    full = load_checkpoint(tmp_path / "x2" / "checkpoints" / "last.pth")
    source = tmp_path / "head.pth"  # a lineage head as ship_run.py keeps it: no optimizer state
    save_checkpoint(source, lineage_head(full))
    src = torch.load(source, weights_only=True)
    assert "optimizer" not in src and "torch_rng" not in src and src["iter"] == full["iter"]
    with pytest.raises(UserError, match="cannot be resumed: it has no optimizer, torch_rng"):
        check_resumable(src, source)
    src = src["model"]
    run = Trainer(config(image_folder, tmp_path / "x3", scale=3, init_from=str(source)))
    own = run.net.state_dict()
    moved = [k for k in own if own[k].shape == src[k].shape and not k.endswith("phase")]
    assert all(torch.equal(own[k], src[k]) for k in moved)
    assert len(moved) == len(own) - 2 - sum(k.endswith("phase") for k in own)  # all but the last conv
    run.run()
    # The source ended in its population phase; this run has its own batch phase and switch (at 5 of 10).
    phases = [json.loads(x)["bn"] for x in (tmp_path / "x3" / "log.jsonl").read_text().splitlines()]
    assert phases == ["batch"] * 5 + ["population"] * 5
    with pytest.raises(UserError, match="does not match"):
        Trainer(config(image_folder, tmp_path / "ecb", block="ecb", init_from=str(source)))
    assert not (tmp_path / "ecb").exists()  # refused before any folder is made


def test_a_fine_tune_from_the_start_keeps_the_sources_population_statistics(tmp_path: Path, image_folder: Path) -> None:
    """Weights trained long against frozen statistics fit those statistics, not fresh estimates of them: a
    --bn-switch 0 run from a population-phase source starts as that source's function (re-estimated, a base x2
    fine-tune validated at 27.46 dB on Set5 after 500 iterations from a source at 36.88)."""
    Trainer(config(image_folder, tmp_path / "src")).run()
    source = tmp_path / "src" / "checkpoints" / "last.pth"
    src = model_from_checkpoint(load_checkpoint(source), source).eval()
    said: list[str] = []
    run = Trainer(config(image_folder, tmp_path / "ft", bn_switch=0, init_from=str(source)), on_message=said.append)
    run.run(stop_at=1)
    assert not any("population statistics from" in line for line in said)
    start = {k: v for k, v in src.state_dict().items() if "running" in k}
    assert start and all(torch.equal(run.net.state_dict()[k], v) for k, v in start.items())
    said.clear()
    Trainer(config(image_folder, tmp_path / "own", bn_switch=0.5, init_from=str(source)), on_message=said.append).run()
    assert any("population statistics from" in line for line in said)  # a run with its own switch estimates anew


@pytest.mark.parametrize("loss", ["l1", "l2"])
def test_loss_choice_is_the_loss_trained_on(tmp_path: Path, image_folder: Path, loss: str) -> None:
    run = Trainer(config(image_folder, tmp_path, loss=loss, precision="fp32"))
    lr, hr = run.sampler.batch_at(0)
    with torch.no_grad():
        sr = run.net(lr.contiguous(memory_format=torch.channels_last))
    expected = {"l1": torch.nn.functional.l1_loss, "l2": torch.nn.functional.mse_loss}[loss](sr, hr)
    other = {"l1": torch.nn.functional.mse_loss, "l2": torch.nn.functional.l1_loss}[loss](sr, hr)
    run.run(stop_at=1)
    logged = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])["loss"]
    assert logged == pytest.approx(float(expected), rel=1e-5)
    assert logged != pytest.approx(float(other), rel=1e-2)


def test_learning_rate_schedules() -> None:
    cosine = TrainConfig(data="", out="", iters=100, lr=1e-3, min_lr=0, warmup=10)
    assert cosine.lr_at(0) == pytest.approx(1e-4)
    assert cosine.lr_at(9) == pytest.approx(1e-3)
    assert cosine.lr_at(55) == pytest.approx(5e-4)
    assert cosine.lr_at(100) == pytest.approx(0, abs=1e-12)
    steps = TrainConfig(data="", out="", iters=100, lr=1e-3, schedule="multistep", milestones=[0.5, 0.8], gamma=0.1)
    assert [steps.lr_at(i) for i in (0, 49, 50, 79, 80)] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5])
    constant = TrainConfig(data="", out="", iters=100, lr=1e-3, schedule="constant", warmup=10)
    assert [constant.lr_at(i) for i in (0, 9, 10, 99)] == pytest.approx([1e-4, 1e-3, 1e-3, 1e-3])


def test_paired_div2k_layout_is_detected(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hr_dir = tmp_path / "DIV2K_train_HR"
    lr_dir = tmp_path / "DIV2K_train_LR_bicubic" / "X2"
    hr_dir.mkdir()
    lr_dir.mkdir(parents=True)
    for i in range(2):
        hr = synthetic_image(rng, 40, 48)
        Image.fromarray(hr).save(hr_dir / f"000{i}.png")
        lr = 255 - downscale(hr, 2)  # visibly not our own downscale: proves the given LR is used
        Image.fromarray(lr).save(lr_dir / f"000{i}x2.png")
    pairs, report = load_pairs(hr_dir, 2)
    assert report.used == 2
    assert np.array_equal(pairs[0].lr, 255 - downscale(pairs[0].hr, 2))
    with pytest.raises(UserError, match="no LR image"):
        load_pairs(hr_dir, 3, lr_root=lr_dir)
    plain = tmp_path / "plain_lr"
    plain.mkdir()
    for f in lr_dir.iterdir():
        (plain / f.name.replace("x2", "")).write_bytes(f.read_bytes())
    with pytest.raises(UserError, match="another scale"):
        load_pairs(hr_dir, 4, lr_root=plain)


def test_data_problems_are_reported_before_training(tmp_path: Path, image_folder: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no images"):
        Trainer(config(empty, tmp_path / "r1"))
    with pytest.raises(UserError, match=r"images are smaller than the patch \(500 LR .*: --patch \d+ keeps them all"):
        Trainer(config(image_folder, tmp_path / "r2", patch=500))
    some_small = tmp_path / "some_small"
    some_small.mkdir()
    for p in image_folder.iterdir():
        (some_small / p.name).write_bytes(p.read_bytes())
    Image.new("RGB", (20, 20)).save(some_small / "tiny.png")
    said: list[str] = []
    Trainer(config(some_small, tmp_path / "r3"), on_message=said.append)
    assert any("skipped 1 image(s) smaller than the patch" in m and "tiny (20x20)" in m for m in said), said
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in image_folder.iterdir():
        (mixed / p.name).write_bytes(p.read_bytes())
    (mixed / "broken.png").write_bytes(b"garbage")
    messages: list[str] = []
    Trainer(config(mixed, tmp_path / "r3", iters=1), on_message=messages.append)
    assert any("broken.png" in m for m in messages) and any("1 unreadable" in m for m in messages)


def test_out_folder_that_is_a_file(tmp_path: Path, image_folder: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        Trainer(config(image_folder, blocker / "run"))


def test_eval_json_and_plot(tmp_path: Path, tiny_checkpoint: Path, image_folder: Path) -> None:
    result = cli("eval", "--model", tiny_checkpoint, "--data", image_folder, "-s", "2", "--json")
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)["results"]
    assert report["degradation"] == "none" and len(report["per_image"]) == 6
    bicubic = json.loads(cli("eval", "--model", "bicubic", "--data", image_folder, "-s", "2", "--json").stdout)
    assert bicubic["results"][0]["psnr"] != report["psnr"]
    pytest.importorskip("matplotlib")
    run_dir = tiny_checkpoint.parent.parent
    result = cli("plot", run_dir, "-o", tmp_path / "curves.png")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "curves.png").size[0] > 100
    assert f"{run_dir.name}: 6 of 6 iterations" in result.stdout


def test_a_runs_speed_is_taken_at_the_thread_count_it_started_with() -> None:
    started = [{"iter": 50 * k, "loss": 1.0, "it_s": 2.0} for k in range(1, 4)]  # logged before threads were
    resumed = [{"iter": 50 * k, "loss": 1.0, "it_s": 4.0, "threads": 2} for k in range(4, 10)]
    assert median_rate(started + resumed) == 2.0
    assert median_rate([{"iter": 0, "loss": 1.0, "psnr": 30.0}, *resumed]) == 4.0
    assert median_rate([{"iter": 0, "loss": 1.0}]) is None


def test_run_summary_sums_step_time_from_the_log(tmp_path: Path) -> None:
    records = [
        {"iter": 50, "loss": 1.0, "it_s": 5.0},
        {"iter": 100, "loss": 0.5, "it_s": 10.0, "psnr": 30.0},
        {"iter": 120, "loss": 0.4, "it_s": 4.0, "psnr": 31.0},
    ]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = summarize(tmp_path)
    assert summary.iterations == 120 and summary.planned is None and summary.config is None
    assert summary.step_seconds == pytest.approx(50 / 5 + 50 / 10 + 20 / 4)
    assert summary.median_it_s == 5.0 and summary.last_psnr == 31.0


def test_a_stopped_run_logs_its_last_stretch(tmp_path: Path, image_folder: Path) -> None:
    """The log must cover every step in the checkpoint, or the model card's step time and iterations fall short."""

    def logged() -> list[int]:
        return [json.loads(x)["iter"] for x in (tmp_path / "log.jsonl").read_text().splitlines()]

    cfg = config(image_folder, tmp_path, log_every=4, ckpt_every=100)
    assert Trainer(cfg).run(time_limit=0).iteration == 1
    assert logged() == [1]
    assert Trainer(cfg, resume=True).run(stop_at=6).iteration == 6
    assert logged() == [1, 4, 6]
    Trainer(cfg, resume=True).run()
    assert logged() == [1, 4, 6, 8, 10]
    assert summarize(tmp_path).iterations == 10


def test_validation_on_benchmark_writes_psnr_and_best(tmp_path: Path) -> None:
    set5 = shared_path("benchmark", "Set5")
    Trainer(config(set5, tmp_path, scale=4, iters=2, val=str(set5), val_every=2)).run()
    last = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert last["iter"] == 2 and 10 < last["psnr"] < 40 and 0 < last["ssim"] < 1
    assert (tmp_path / "checkpoints" / "best.pth").exists()


def test_distributed_training_on_cpu_with_gloo(tmp_path: Path, image_folder: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "repsr_cli",
        *train_args(image_folder, out, 4, "--bn-switch", "0.5", "--bn-batches", "2", "--log-every", "1"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    records = (out / "log.jsonl").read_text().splitlines()
    assert [json.loads(r)["iter"] for r in records] == [1, 2, 3, 4]  # rank 0 alone writes
    ckpt = torch.load(out / "checkpoints" / "last.pth", weights_only=True)
    assert ckpt["iter"] == 4 and not any(k.startswith("module.") for k in ckpt["model"])


def test_ctrl_c_checkpoints_at_an_iteration_boundary(tmp_path: Path, image_folder: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "repsr_cli",
        *train_args(image_folder, out, 100000, "--log-every", "1", "--ckpt-every", "100000"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-1000:]
    assert "Traceback" not in stderr
    ckpt = torch.load(out / "checkpoints" / "last.pth", weights_only=True)
    assert ckpt["iter"] >= 3
    resumed = run_cli("train", "--out", out, "--resume", "--stop-at", str(ckpt["iter"] + 2))
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(out / "checkpoints" / "last.pth", weights_only=True)["iter"] == ckpt["iter"] + 2


@pytest.mark.parametrize(("drop", "words"), [("ema", r"no generator EMA \('ema'\)"), ("objective", "no discriminator")])
def test_resuming_a_sharp_run_names_the_part_its_checkpoint_lacks(
    tmp_path: Path, image_folder: Path, drop: str, words: str
) -> None:
    out = tmp_path / "run"
    Trainer(config(image_folder, out, loss="sharp")).run(stop_at=3)
    path = out / "checkpoints" / "last.pth"
    ckpt = torch.load(path, weights_only=True)
    del ckpt[drop]
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=words) as caught:
        Trainer(config(image_folder, out, loss="sharp"), resume=True).run()
    assert "--loss sharp" in str(caught.value) and "model weights" not in str(caught.value)


def test_a_nan_start_or_a_diverging_loss_stops_the_run_in_one_line(
    tmp_path: Path, image_folder: Path, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    next(v for v in ckpt["model"].values() if v.is_floating_point()).fill_(float("nan"))
    nan = tmp_path / "nan.pth"
    torch.save(ckpt, nan)
    with pytest.raises(UserError, match="NaN or infinite values"):
        Trainer(config(image_folder, tmp_path / "a", init_from=str(nan)))
    from repsr_cli.train import objectives

    real = objectives.Objective.generator_loss
    monkeypatch.setattr(
        objectives.Objective, "generator_loss", lambda self, *a: (real(self, *a)[0] * float("nan"), {"pixel": 0.0})
    )
    with pytest.raises(UserError, match="the loss became nan at iteration 0: the run diverged"):
        Trainer(config(image_folder, tmp_path / "b")).run()
    result = cli("train", "--data", image_folder, "--out", tmp_path / "c", "--seed", "9" * 23, "--iters", "2")
    assert result.returncode == 1 and "--seed must be below 2**63" in result.stderr


def test_a_run_replays_from_its_config(tmp_path: Path, image_folder: Path) -> None:
    """`repsr train --config RUN/config.json` trains the recorded run again, bit for bit; options given on the
    command line override the file, and a file that is not a run's configuration is refused in one line."""
    first = tmp_path / "first"
    run_cli(*train_args(image_folder, first, 4, "--seed", "3"))
    again = tmp_path / "again"
    run_cli("train", "--config", first / "config.json", "--out", again)
    recorded = json.loads((first / "config.json").read_text())
    assert json.loads((again / "config.json").read_text()) == {**recorded, "out": str(again)}
    a, b = (load_checkpoint(d / "checkpoints" / "last.pth")["model"] for d in (first, again))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    longer = tmp_path / "longer"
    run_cli("train", "--config", first / "config.json", "--out", longer, "--iters", "5")
    assert json.loads((longer / "config.json").read_text())["iters"] == 5
    (tmp_path / "bad.json").write_text('{"iters": 3}')
    one_line_error(cli("train", "--config", tmp_path / "bad.json"), "not a run configuration")
    one_line_error(cli("train", "--config", tmp_path / "absent.json"), "cannot read this run configuration")
    # runs recorded before the model size was called --size name it "preset" (history/ holds such records)
    older = {("preset" if key == "size" else key): value for key, value in {**recorded, "size": "small"}.items()}
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert replayed(tmp_path / "older.json", TrainConfig(data="", out=""), set()).size == "small"


def test_init_from_names_a_run_even_where_its_folder_moved(tmp_path: Path, image_folder: Path) -> None:
    Trainer(config(image_folder, tmp_path / "source")).run()
    head = tmp_path / "source" / "checkpoints" / "last.pth"
    for spec in ("source", "weights/checkpoints/source/checkpoints/last.pth"):  # a name; a path that moved
        run = Trainer(config(image_folder, tmp_path / f"from-{len(spec)}", init_from=spec))
        want = load_checkpoint(head)["model"]
        assert torch.equal(run.net.state_dict()["body.0.weight"], want["body.0.weight"])
    with pytest.raises(UserError, match="no run 'nowhere' with one in .*a run without one replays its config"):
        Trainer(config(image_folder, tmp_path / "lost", init_from="nowhere"))
    (tmp_path / "parked").mkdir()  # a run whose record is kept but not its checkpoint: its own config is named
    (tmp_path / "parked" / "config.json").write_text("{}")
    with pytest.raises(UserError, match=f"replay it with: repsr train --config {tmp_path}/parked/config.json"):
        Trainer(config(image_folder, tmp_path / "lost", init_from="parked"))
    assert not (tmp_path / "lost").exists()
