"""The training loop: a loss recipe's objective + Adam, lr schedule, the BN switch, validation, checkpoints and
exact resume.

Exact resume rests on three things: batches are a pure function of the iteration (data/dataset.py),
the learning rate is a pure function of the iteration (config.py), and the checkpoint holds model,
optimizer, BN phase, and for adversarial recipes the generator EMA, the discriminator and its optimizer.
A run stopped at k and resumed is bit-identical on CPU to one that never stopped.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from .. import distributed
from ..data.dataset import PatchSampler, Prefetcher, load_pairs
from ..data.degradations import make_degrader
from ..errors import UserError
from ..formats.checkpoint import (
    check_resumable,
    checkpoint_warning,
    load_checkpoint,
    load_network_state,
    model_from_checkpoint,
    save_checkpoint,
)
from ..formats.files import Busy, exclusive
from ..measure import evaluate
from ..model import BNPhase, RepSRNet, bn_phase, estimate_population_stats, fuse, set_bn_phase
from ..model.grow import can_grow, grow
from ..runtime import resolve_device, resolve_precision
from .config import TrainConfig, init_run_name
from .ema import GeneratorEMA
from .objectives import Objective
from .recipes import RECIPES
from .runlog import parse_log

BN_STREAM = 1  # sampler stream for population statistics, apart from the training batches


@dataclass
class TrainResult:
    iteration: int
    finished: bool
    reason: str
    best_psnr: float | None
    last_checkpoint: Path
    warning: str | None = None  # what the user must know of the model this run made


Callback = Callable[[dict[str, Any]], None]


RUN_HOMES = ("history", "experiments", "runs")  # where a run named by --init-from is looked for (from the cwd)


def init_checkpoint(spec: str, beside: Path) -> Path:
    """--init-from as given: a checkpoint file, or a run by name (`real-base-x4-decay`; an old path to a run's
    checkpoint whose folder has moved counts as its name): that run's checkpoints/last.pth next to this run's
    folder (`beside`) or in history/, experiments/ or runs/."""
    path = Path(spec)
    if path.exists():
        return path
    name = init_run_name(spec)
    homes = [beside, *map(Path, RUN_HOMES)]
    for home in homes:
        if (found := home / name / "checkpoints" / "last.pth").exists():
            return found
    _check_not_deployed(spec)
    record = next((home / name / "config.json" for home in homes if (home / name / "config.json").exists()), None)
    replay = f"replay it with: repsr train --config {record}" if record else "a run without one replays its config"
    raise UserError(
        f"--init-from: no such checkpoint, and no run {name!r} with one in {', '.join(map(str, homes))} ({replay})",
        spec,
    )


def _check_not_deployed(spec: str) -> None:
    """A model name given as init_from is a fused network, with no blocks to train: say which run made it, rather
    than 'no such checkpoint'."""
    from ..deploy.weights import available_models, bundled_table

    if spec not in {e.name for e in available_models()}:
        return
    row = bundled_table().get(spec)
    made_by = f" (run {row.run!r} made this one: --init-from {row.run} in a repsr source tree)" if row else ""
    raise UserError(f"is a fused deploy model: --init-from takes a training checkpoint or run{made_by}", spec)


class Trainer:
    """Owns one run directory. `run()` trains until done, `stop_at`, the time limit, or a signal."""

    def __init__(
        self,
        cfg: TrainConfig,
        resume: bool = False,
        device: str = "cpu",
        data_workers: int = 0,
        on_log: Callback | None = None,
        on_message: Callable[[str], None] | None = None,
        given: set[str] | None = None,
    ) -> None:
        """`given`: the configuration fields the user set (on resume, each must match the run's own, except
        `iters`, which lengthens the run where its steps so far stay as they were)."""
        dev = resolve_device(device)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)  # nccl and DDP use the current device: this rank's own GPU
        self.device = str(dev)
        self.data_workers = data_workers
        self.env = distributed.init(self.device)
        self.on_log = on_log or (lambda rec: None)
        self.say = on_message or (lambda msg: None)
        self.out = Path(cfg.out)
        self.ckpt_dir = self.out / "checkpoints"
        ckpt = self._resume_state(resume)
        if ckpt is not None:
            given = given or set()
            self._check_unchanged(cfg, ckpt["train"], given - {"iters"})
            saved = TrainConfig.from_dict({**ckpt["train"], "out": cfg.out, "data": cfg.data or ckpt["train"]["data"]})
            cfg = self._extended(saved, cfg.iters, int(ckpt["iter"])) if "iters" in given else saved
        cfg.check()
        if ckpt is None and cfg.init_from:
            init_checkpoint(cfg.init_from, self.out.parent)  # refused before any folder is made
        self.cfg = cfg
        dtype = resolve_precision(cfg.precision, torch.device(self.device))
        self.amp_dtype = None if dtype == torch.float32 else dtype  # autocast dtype; fp32 runs without autocast
        self.sampler, self.val_pairs = self._load_data()
        torch.manual_seed(cfg.seed)
        self.net = RepSRNet(cfg.net_config())
        self.iteration, self.best_psnr, self.last_psnr = 0, None, None
        if ckpt is not None:
            self.net = model_from_checkpoint(ckpt, self.ckpt_dir / "last.pth", ema=False)
            self.iteration, self.best_psnr = int(ckpt["iter"]), ckpt.get("best_psnr")
            self.last_psnr = ckpt.get("last_psnr")
        elif cfg.init_from:
            self._init_body(init_checkpoint(cfg.init_from, self.out.parent))
        self._check_out_dir()  # after the data and the init: a run that cannot start leaves no folder behind
        self.net = self.net.to(self.device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        recipe = RECIPES[cfg.loss]
        self.ema = GeneratorEMA(self.net, recipe.ema) if recipe.ema > 0 else None
        self.objective = Objective(recipe, cfg.scale, self.device, self._autocast)
        if ckpt is not None:
            self._restore(ckpt)
        self.model = DistributedDataParallel(self.net) if self.env.active else self.net
        self._stop_signal: str | None = None

    # ---- setup -------------------------------------------------------------------------------------

    def _resume_state(self, resume: bool) -> dict[str, Any] | None:
        last = self.ckpt_dir / "last.pth"
        if not resume:
            if last.exists():
                raise UserError("holds a run already: pass --resume to continue it, or choose another --out", self.out)
            return None
        if not last.exists():
            raise UserError("nothing to resume: no checkpoints/last.pth", self.out)
        ckpt = load_checkpoint(last)
        check_resumable(ckpt, last)
        return ckpt

    def _check_unchanged(self, cfg: TrainConfig, saved: dict[str, Any], given: set[str]) -> None:
        """A resumed run continues as it was configured: an option set to another value is refused, not ignored
        (the data folder may move)."""
        for name in sorted(given - {"data", "out"}):
            if name in saved and getattr(cfg, name) != saved[name]:
                raise UserError(
                    f"--{name.replace('_', '-')} {getattr(cfg, name)} differs from the run's {saved[name]}: --resume "
                    "continues the run as configured (start a new run in another --out to change it)",
                    self.out,
                )

    def _extended(self, saved: TrainConfig, iters: int, done: int) -> TrainConfig:
        """A finished or stopped run continued to another length, where its steps so far stay as they were."""
        try:
            return saved.extended_to(iters, done)
        except UserError as exc:
            raise UserError(str(exc), self.out) from None

    def _restore(self, ckpt: dict[str, Any]) -> None:
        """Optimizer, RNG, and the recipe's own state (EMA, discriminator) from the checkpoint."""
        path = self.ckpt_dir / "last.pth"
        recipe = f"--loss {self.cfg.loss}"
        if self.ema is not None:
            what = f"generator EMA ('ema'), which {recipe} resumes with: it was not written by a run of that recipe"
            load_network_state(self.ema.net, ckpt.get("ema"), path, what)
        if self.objective.disc is not None and not isinstance(ckpt.get("objective"), dict):
            raise UserError(f"checkpoint holds no discriminator state ('objective'), which {recipe} resumes with", path)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            torch.set_rng_state(ckpt["torch_rng"])
            if self.objective.disc is not None:
                self.objective.load_state_dict(ckpt["objective"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise UserError(f"checkpoint's optimizer state does not fit: {exc}", path) from None

    def _check_out_dir(self) -> None:
        if not self.env.main:
            return
        try:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            probe = self.ckpt_dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise UserError(f"cannot write the run folder ({exc.strerror or exc})", self.out) from None

    def _load_data(self) -> tuple[PatchSampler, list]:
        cfg = self.cfg
        pairs, report = load_pairs(
            Path(cfg.data),
            cfg.scale,
            max_side=cfg.max_hr_side,
            lr_root=Path(cfg.lr_data) if cfg.lr_data else None,
            warn=lambda msg: self.say(f"skipped: {msg}"),
        )
        if report.unreadable:
            self.say(f"{len(report.unreadable)} unreadable image(s) skipped")
        if not pairs:
            raise UserError(f"no image could be read ({len(report.unreadable)} unreadable)", cfg.data)
        usable = [p for p in pairs if min(p.lr.shape[:2]) >= cfg.patch]
        small = [p for p in pairs if p not in usable]
        patch = f"the patch ({cfg.patch} LR pixels at x{cfg.scale}, {cfg.patch * cfg.scale} HR)"
        if len(small) * 2 > len(pairs):  # most of the data would be dropped: refuse, and say what keeps it
            fits = min(min(p.lr.shape[:2]) for p in pairs)
            raise UserError(
                f"{len(small)} of {len(pairs)} images are smaller than {patch}: --patch {fits} keeps them all", cfg.data
            )
        if small:
            named = ", ".join(f"{p.name} ({p.hr.shape[1]}x{p.hr.shape[0]})" for p in small[:5])
            more = f" and {len(small) - 5} more" if len(small) > 5 else ""
            self.say(f"skipped {len(small)} image(s) smaller than {patch}: {named}{more}")
        self.say(f"training on {len(usable)} images")
        degrader = make_degrader(cfg.degradation, cfg.scale)
        sampler = PatchSampler(usable, cfg.scale, cfg.patch, cfg.batch, cfg.seed, self.env.rank, degrader)
        val = evaluate.load_benchmark(Path(cfg.val), cfg.scale) if cfg.val and self.env.main else []
        if cfg.val and self.env.main and not val:
            raise UserError("no validation image could be read (a folder of HR images, or one with HR/)", cfg.val)
        # the floor every validation is held to: a network below bicubic upscaling is broken, however it trained
        self.bicubic_psnr = evaluate.evaluate(evaluate.bicubic(cfg.scale), val, cfg.scale).psnr if val else None
        return sampler, val

    def _init_body(self, path: Path) -> None:
        """Start from another run's weights: a smaller network of the same scale is grown into this one with its
        function kept (model/grow.py); otherwise the last conv is kept only when its shape fits (same scale)."""
        net = model_from_checkpoint(load_checkpoint(path), path)
        bad = [k for k, v in net.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:  # every step from it would be NaN: a run that 'finishes' on garbage
            raise UserError(f"its weights hold NaN or infinite values ({bad[0]}); start from another checkpoint", path)
        if can_grow(net.cfg, self.net.cfg):
            grow(net, self.net)
            self.say(f"grown from {path} ({net.cfg.blocks}x{net.cfg.channels}, the same function to start)")
        else:
            src, own = net.state_dict(), self.net.state_dict()
            taken = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
            if len(taken) < len(own) - 2:
                src_cfg, cfg = net.cfg, self.net.cfg
                raise UserError(
                    f"its network ({src_cfg.blocks}x{src_cfg.channels} {src_cfg.block}, x{src_cfg.scale}) does not "
                    f"match this run's ({cfg.blocks}x{cfg.channels} {cfg.block}, x{cfg.scale}): a body of the same "
                    "size and block is taken for any scale, a smaller repsr network grows only into the same scale",
                    path,
                )
            self.net.load_state_dict({**own, **taken})
            self.say(f"initialised {len(taken)}/{len(own)} tensors from {path}")
        if bn_phase(self.net) is None:
            return
        if self.cfg.switch_iter == 0 and bn_phase(net) is BNPhase.POPULATION:
            # A source trained long in its population phase has weights fitted to those statistics; estimated
            # anew they differ, and the function falls apart (experiments/sharp-base-x2-reestimated: Set5
            # 27.46 dB at iteration 500 from a source at 36.88).
            set_bn_phase(self.net, BNPhase.POPULATION)
            self.say("population statistics kept from the source (--bn-switch 0 from its population phase)")
        else:  # a finished source run is in its population phase; this run has its own BN switch to reach
            set_bn_phase(self.net, BNPhase.BATCH)

    # ---- loop --------------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.split(":")[0], dtype=self.amp_dtype)

    def _switch_bn(self) -> None:
        cfg = self.cfg
        batches = (
            self.sampler.batch_at(i, stream=BN_STREAM)[0].to(self.device, memory_format=torch.channels_last)
            for i in range(cfg.bn_batches)
        )
        n = estimate_population_stats(self.net, batches, reduce=self.env.sum)
        set_bn_phase(self.net, BNPhase.POPULATION)
        self.say(f"iteration {self.iteration}: population statistics from {n} batches; BN phase -> population")

    def _step(self, it: int, batches: Prefetcher, end: int) -> tuple[float, dict[str, float], float]:
        """One optimisation step; returns the loss, its parts by name, and the seconds spent waiting for the batch."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr_at(it)
        self.objective.set_lr_factor(self.cfg.lr_at(it) / self.cfg.lr)
        t0 = time.perf_counter()
        lr, hr = batches.batch_at(it, end)
        data_seconds = time.perf_counter() - t0
        lr = lr.to(self.device, memory_format=torch.channels_last)
        hr = hr.to(self.device)
        with self._autocast():
            sr = self.model(lr)
            reference = self.ema(lr).float() if self.ema is not None and self.objective.needs_reference else None
        sr = sr.float()
        loss, parts = self.objective.generator_loss(sr, hr, reference)
        if not torch.isfinite(loss):  # stop before the step spreads it into the weights; last.pth is intact
            raise UserError(
                f"the loss became {float(loss.detach())} at iteration {it}: the run diverged; lower --lr, or resume"
                " from the last checkpoint",
                self.out,
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.net)
        parts.update(self.objective.after_generator_step(sr, hr))
        return float(loss.detach()), parts, data_seconds

    def validate(self) -> evaluate.EvalResult | None:
        if not self.val_pairs:
            return None
        net = self.ema.net if self.ema is not None else self.net  # what convert will ship
        deploy = fuse(net.eval())
        net.train()
        return evaluate.evaluate(evaluate.network(deploy, self.device), self.val_pairs, self.cfg.scale)

    def _state(self) -> dict[str, Any]:
        return {
            "config": self.net.cfg.to_dict(),
            "train": self.cfg.to_dict(),
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "iter": self.iteration,
            "best_psnr": self.best_psnr,
            "last_psnr": self.last_psnr,
            "bicubic_psnr": self.bicubic_psnr,
            "torch_rng": torch.get_rng_state(),
            **({"ema": self.ema.net.state_dict()} if self.ema is not None else {}),
            **({"objective": self.objective.state_dict()} if self.objective.disc is not None else {}),
        }

    def save(self, name: str = "last.pth") -> Path:
        path = self.ckpt_dir / name
        if self.env.main:
            save_checkpoint(path, self._state())
        return path

    def _prepare_log(self) -> Path:
        """Write config.json; on resume drop log records newer than the checkpoint (they will be redone)."""
        log = self.out / "log.jsonl"
        if not self.env.main:
            return log
        (self.out / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2))
        if log.exists():
            kept = [rec for rec in parse_log(log) if rec["iter"] <= self.iteration]
            log.write_text("".join(json.dumps(rec) + "\n" for rec in kept))
        return log

    def _on_signal(self, signum: int, frame: object) -> None:
        """Stop at the next iteration boundary, so the checkpoint never holds a half-applied step.
        A second Ctrl-C falls through to the default handler and stops at once."""
        self._stop_signal = signal.Signals(signum).name
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def _install_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def run(self, stop_at: int | None = None, time_limit: float | None = None) -> TrainResult:
        """Train under the run folder's lock: a second run on the same --out is refused, not interleaved."""
        lock = exclusive(self.out / ".train.lock") if self.env.main else contextlib.nullcontext()
        try:
            with lock:
                return self._run(stop_at, time_limit)
        except Busy:
            raise UserError("another train run is using this folder right now", self.out) from None

    def _run(self, stop_at: int | None, time_limit: float | None) -> TrainResult:
        cfg = self.cfg
        log_path = self._prepare_log()
        end = min(cfg.iters, stop_at) if stop_at is not None else cfg.iters
        start_time = time.monotonic()
        previous = self._install_handlers()
        self.net.train()
        losses: list[float] = []
        parts: list[dict[str, float]] = []
        data_time, tick = 0.0, time.monotonic()
        reason = "finished"
        batches = Prefetcher(self.sampler, self.data_workers)
        try:
            while self.iteration < end:
                if self.iteration == cfg.switch_iter and bn_phase(self.net) == BNPhase.BATCH:
                    self._switch_bn()
                loss, step_parts, waited = self._step(self.iteration, batches, end)
                losses.append(loss)
                parts.append(step_parts)
                data_time += waited
                self.iteration += 1
                timed_out = time_limit is not None and time.monotonic() - start_time > time_limit
                stopping = self.env.any(bool(self._stop_signal) or timed_out) and self.iteration < end
                # A run that stops between log records still logs its last stretch, so the log's step time
                # and iteration count cover every step the checkpoint holds.
                log_now, validate_now = self._due(last=stopping or self.iteration == end)
                if log_now:
                    record = self._log_record(losses, parts, tick, data_time)
                    if validate_now:
                        self._validate_into(record)
                    losses, parts, tick, data_time = [], [], time.monotonic(), 0.0
                    if self.env.main:
                        with log_path.open("a") as fh:
                            fh.write(json.dumps(record) + "\n")
                    self.on_log(record)
                if self.iteration % cfg.ckpt_every == 0 or self.iteration == end or stopping:
                    self.save()
                if stopping:
                    reason = {"SIGINT": "interrupted", "SIGTERM": "terminated"}.get(self._stop_signal, "time limit")
                    break
            else:
                reason = "finished" if end == cfg.iters else f"stopped at {end}"
        finally:
            batches.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return TrainResult(
            self.iteration,
            self.iteration >= cfg.iters,
            reason,
            self.best_psnr,
            self.ckpt_dir / "last.pth",
            checkpoint_warning(self._state()),
        )

    def _due(self, last: bool) -> tuple[bool, bool]:
        """(log now, validate now) after the iteration just done."""
        it, cfg = self.iteration, self.cfg
        validate = cfg.val_every > 0 and (it % cfg.val_every == 0 or it == cfg.iters)
        return it % cfg.log_every == 0 or validate or it == cfg.iters or last, validate

    def _log_record(
        self, losses: list[float], parts: list[dict[str, float]], tick: float, data_time: float
    ) -> dict[str, Any]:
        """The step statistics since the last record; a recipe of several terms logs each as `loss_NAME`."""
        it, cfg = self.iteration, self.cfg
        elapsed = time.monotonic() - tick
        phase = bn_phase(self.net)
        return {
            "iter": it,
            "loss": sum(losses) / len(losses),
            "lr": cfg.lr_at(it - 1),
            "bn": phase.label if phase is not None else "none",
            "it_s": len(losses) / elapsed if elapsed > 0 else None,
            "data_share": data_time / elapsed if elapsed > 0 else None,
            "threads": torch.get_num_threads(),  # a speed means little without the CPU threads behind it
            **{f"loss_{name}": sum(p[name] for p in parts) / len(parts) for name in parts[0] if len(parts[0]) > 1},
        }

    def _validate_into(self, record: dict[str, Any]) -> None:
        """Score the fused network on the validation set; keep the best checkpoint."""
        result = self.validate()
        if result is None:
            return
        record.update(psnr=result.psnr, ssim=result.ssim, psnr_bicubic=self.bicubic_psnr)
        self.last_psnr = result.psnr
        if self.best_psnr is None or result.psnr > self.best_psnr:
            self.best_psnr = result.psnr
            self.save("best.pth")
