"""The `repsr` command: each command parses its options and calls the Python API, nothing more."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import __version__
from .data.presets import DEGRADATIONS
from .errors import UserError
from .help_style import Command, Group
from .runtime import DEVICE_HELP, ENGINE_HELP, PRECISION_HELP
from .schema import (
    ALPHA_MODES,
    BLOCK_NAMES,
    BN_MODES,
    DEPLOY_FORMATS,
    EXPORT_FORMATS,
    MODEL_SIZES,
    OUTPUT_FORMATS,
    SCHEDULES,
    choices,
    number_text,
)
from .train.config import TrainConfig, replayed
from .train.recipes import RECIPES

_T = TrainConfig  # its field defaults are the train command's defaults

app = typer.Typer(
    help="repsr: image and video upscaling with RepSR networks (train, fuse, deploy).",
    no_args_is_help=True,
    cls=Group,
    pretty_exceptions_enable=False,
    add_completion=False,
)
command = functools.partial(app.command, cls=Command)  # every command's help in shell conventions
out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"repsr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """repsr: image and video upscaling with RepSR networks (train, fuse, deploy)."""


# Options that several commands share: one definition each.
ScaleOption = Annotated[
    float | None,
    typer.Option(
        "--scale",
        "-s",
        help="Factor (default: the -m model's, else 4): 2, 3, 4 run a model; others finish with a Lanczos resize.",
    ),
]
DetailOption = Annotated[
    float | None,
    typer.Option(
        help="0 (the real model exactly: faithful) to 1 (the sharp model: crisp edges, invented texture), for every "
        "input; a blend of the two in between. Not with --denoise or -m.",
    ),
]
SizeOption = Annotated[
    str | None,
    typer.Option(
        "--size",
        help=f"Model size of the bundled models: {choices(MODEL_SIZES)} (default: small on a CPU, where base costs "
        "4-6x the time for under 0.2 dB on compressed inputs; the biggest bundled on a GPU).",
    ),
]
DeviceOption = Annotated[str, typer.Option(help=DEVICE_HELP)]
PrecisionOption = Annotated[str, typer.Option(help=PRECISION_HELP)]
EngineOption = Annotated[str, typer.Option(help=ENGINE_HELP)]

# ---- upscale ---------------------------------------------------------------------------------------


@command()
def upscale(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.", show_default=False)],
    scale: ScaleOption = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model name or file (default: per input, repsr-real-x{s} for JPEG and lossy WebP, repsr-x{s} "
            "for lossless files).",
        ),
    ] = None,
    denoise: Annotated[
        float | None,
        typer.Option(
            help="0 (clean model: sharpest) to 1 (real model: removes most artifacts), for every input. Not with "
            "--detail or -m."
        ),
    ] = None,
    detail: DetailOption = None,
    size: SizeOption = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Output file (one input) or folder (ending in / is one).")
    ] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Descend into folders; -o keeps the tree.")
    ] = False,
    fmt: Annotated[str | None, typer.Option("--format", help=f"{choices(OUTPUT_FORMATS)} (default: as input).")] = None,
    quality: Annotated[int | None, typer.Option(help="JPEG/WebP quality (default 95).", show_default=False)] = None,
    png_compression: Annotated[
        int | None, typer.Option(help="PNG zlib level 0-9 (default 1: fast, slightly larger).", show_default=False)
    ] = None,
    suffix: Annotated[
        str | None,
        typer.Option(
            help="Output name suffix (default: the size, _x{scale}, _w{width}, _h{height} or _{w}x{h}, then the "
            "model size, model or blend when named: _x4-repsr-x4, _x4-detail0.5, _x4-small-detail0.5)."
        ),
    ] = None,
    width: Annotated[int | None, typer.Option(help="Output width (keeps aspect unless --height too).")] = None,
    height: Annotated[int | None, typer.Option(help="Output height.")] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    engine: EngineOption = "auto",
    tile: Annotated[
        int | None,
        typer.Option(
            help="Tile size in input pixels; 0 = whole image; default: 384 on a CPU, from free memory on a GPU."
        ),
    ] = None,
    alpha: Annotated[str, typer.Option(help=f"Alpha channel: {choices(ALPHA_MODES)}.")] = ALPHA_MODES[0],
    compile_model: Annotated[
        bool, typer.Option("--compile", help="torch.compile the network (faster, slow to start).")
    ] = False,
    max_pixels: Annotated[int | None, typer.Option(help="Raise Pillow's decompression-bomb limit.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs (never the input).")] = False,
) -> None:
    """Upscale images: bundled models, deploy weights, Real-ESRGAN compact .pth or training checkpoints."""
    from PIL import Image

    from .infer.batch import (
        OutputPlan,
        check_encode_options,
        collect_inputs,
        my_share,
        output_suffix,
        plan_jobs,
        upscale_files,
    )
    from .infer.progress import BatchProgress, summary
    from .infer.upscaler import choose_upscaler
    from .media.write import EncodeOptions

    if max_pixels is not None:
        if max_pixels < 1:
            raise UserError(f"--max-pixels must be at least 1, got {max_pixels}")
        Image.MAX_IMAGE_PIXELS = max_pixels
    given = {"quality": quality, "png_compression": png_compression}
    encode = EncodeOptions(**{name: value for name, value in given.items() if value is not None})
    if scale is not None and (width or height):
        raise UserError("-s and --width/--height both set the output size; use one")
    options = dict(
        device=device, precision=precision, engine=engine, tile=tile, alpha=alpha, compile_model=compile_model
    )
    knobs = {"denoise": denoise, "detail": detail}
    upscaler = choose_upscaler(scale, model, knobs, size, **options)
    scale = scale or upscaler.scale
    tag = _setting_tag(model, knobs, size)
    plan = OutputPlan(
        Path(output) if output else None,
        fmt.lower().lstrip(".") if fmt else None,
        suffix or output_suffix(scale, width, height, tag),
        folder=bool(output) and output.endswith(("/", os.sep)),
    )
    ours: list[Path] = []
    jobs = my_share(plan_jobs(collect_inputs(inputs, recursive, ours), plan))
    missing = [job.source for job in jobs if not job.source.exists() and not job.source.is_symlink()]
    if jobs and len(missing) == len(jobs):  # nothing to do at all: one line, no bar or summary
        raise UserError("file not found" if len(jobs) == 1 else f"none of the {len(jobs)} inputs exists", missing[0])
    check_encode_options(jobs, quality is not None, png_compression is not None)
    if ours:
        out.print(
            f"left out {len(ours)} file(s) that an earlier repsr run wrote (name a file to upscale it again)",
            markup=False,
            highlight=False,
        )
    with BatchProgress(out, err, len(jobs)) as progress:
        report = upscale_files(upscaler, jobs, scale, width, height, overwrite, encode, progress.callbacks())
    out.print(summary(report))
    if report.failed:
        raise typer.Exit(1)


def _setting_tag(model: str | None, knobs: dict[str, float | None], size: str | None = None) -> str | None:
    """What a default output name adds for a model size, model or blend the user named (files.output_suffix),
    so that a rerun with another of them writes a new file instead of skipping the first."""
    named = Path(model).stem if model is not None else None
    blend = next((f"{knob}{number_text(value)}" for knob, value in knobs.items() if value is not None), None)
    return "-".join(part for part in (size, named or blend) if part) or None


@command("upscale-video")
def upscale_video(
    source: Annotated[Path, typer.Argument(help="Video file.", show_default=False)],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output; its extension picks the container (mp4, mkv, mov, webm)."),
    ] = None,
    scale: ScaleOption = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model name or file (default: repsr-real-x{s}).")
    ] = None,
    denoise: Annotated[
        float | None,
        typer.Option(
            help="0 (clean model: sharpest) to 1 (real model, the default: cleanest). Not with --detail or -m."
        ),
    ] = None,
    detail: DetailOption = None,
    size: SizeOption = None,
    codec: Annotated[
        str | None, typer.Option(help="Video encoder: libx264 (default), libx265, libvpx-vp9, ...")
    ] = None,
    crf: Annotated[int, typer.Option(help="Constant rate factor (quality; lower is better).")] = 18,
    preset: Annotated[str, typer.Option(help="x264/x265 speed preset.")] = "medium",
    pix_fmt: Annotated[
        str | None, typer.Option(help="Output pixel format (default: yuv420p; yuv420p10le for sources over 8 bits).")
    ] = None,
    start: Annotated[float | None, typer.Option(help="Start at this second (preview).")] = None,
    duration: Annotated[float | None, typer.Option(help="Only this many seconds (preview).")] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    engine: EngineOption = "auto",
    tile: Annotated[
        int | None, typer.Option(help="Tile size; 0 = whole frame; default: 384 on a CPU, from free memory on a GPU.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted job after its last finished segment (kept in .OUTPUT.repsr-work beside "
            "the output); refused if the input or a setting changed.",
        ),
    ] = False,
) -> None:
    """Upscale a video, streaming; keeps frame rate, duration, audio tracks and subtitles.
    Ctrl-C or an error leaves no output file (never a truncated one); the finished 2-second segments stay
    beside it, and --resume continues from them."""

    from .infer.batch import output_suffix
    from .infer.progress import VideoProgress, video_summary
    from .infer.upscaler import choose_upscaler
    from .infer.video import CONTAINERS, VideoOptions, check_request, check_window, probe
    from .infer.video import upscale_video as run

    if start is not None and not start >= 0:
        raise UserError(f"--start must be 0 or more, got {start:g}")
    if duration is not None and not 0 < duration < math.inf:
        raise UserError(f"--duration must be a positive number of seconds, got {duration:g}")
    if start is not None and start == math.inf:
        raise UserError("--start must be a number of seconds, got inf")
    options = dict(device=device, precision=precision, engine=engine, tile=tile)
    knobs = {"denoise": denoise, "detail": detail}
    tag = _setting_tag(model, knobs, size)
    upscaler = choose_upscaler(scale, model, knobs, size, video=True, **options)
    scale = scale or upscaler.scale
    if output is None:
        ext = source.suffix.lower() if source.suffix.lower() in CONTAINERS else ".mkv"
        output = source.with_name(f"{source.stem}{output_suffix(scale, tag=tag)}{ext}")
    opts = VideoOptions(codec, crf, preset, pix_fmt, start, duration)
    check_request(source, output, opts, overwrite)
    info = probe(source)
    check_window(info, opts, source)
    with VideoProgress(out, info, opts) as progress:
        report = run(
            upscaler, source, output, opts, overwrite, progress.on_frame, scale, info, resume, progress.on_resume
        )
    out.print(video_summary(report, upscaler.name))


# ---- convert / eval / train ------------------------------------------------------------------------


@command()
def convert(
    model: Annotated[
        str,
        typer.Argument(
            help="A training checkpoint (.pth) to fuse; for onnx and ncnn, any model -m takes.", show_default=False
        ),
    ],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help=f"{choices(DEPLOY_FORMATS + EXPORT_FORMATS)} (pth: Real-ESRGAN's loaders; ncnn: NAME.param + "
            "NAME.bin).",
        ),
    ] = DEPLOY_FORMATS[0],
    half: Annotated[bool, typer.Option(help="ONNX with float16 weights, input and output.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Fuse a training checkpoint into plain deploy weights (SRVGGNetCompact layout), or export a model to ONNX
    or ncnn for onnxruntime, OpenVINO, realesrgan-ncnn-vulkan and Upscayl."""
    from .deploy.convert import convert as run_convert
    from .deploy.convert import export

    if fmt in EXPORT_FORMATS:
        result = export(model, output, fmt, half, overwrite)
        files = f"{result.output} and {result.output.with_suffix('.bin')}" if fmt == "ncnn" else f"{result.output}"
        out.print(f"wrote {files} (x{result.scale}, {result.blocks} blocks x {result.channels} channels)")
        return
    if half:
        raise UserError("--half is for ONNX exports")
    result = run_convert(Path(model), output, fmt, overwrite)
    out.print(f"wrote {result.output} (x{result.scale}, {result.blocks} blocks x {result.channels} channels)")
    out.print(f"max abs difference, training vs fused network: {result.max_abs_diff:.3g}")
    if result.warning:
        err.print(f"warning: {result.warning}", markup=False, highlight=False, soft_wrap=True)


def _json_safe(obj: object) -> object:
    """JSON has no NaN or Infinity: a PSNR of identical images (inf) is written as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


@command("eval")
def eval_(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name or file, or 'bicubic'.")],
    data: Annotated[Path, typer.Option("--data", help="Benchmark folder of HR images (or with an HR/ subfolder).")],
    scale: Annotated[int, typer.Option("--scale", "-s", help="Scale factor.")] = 4,
    degrade: Annotated[
        list[str] | None,
        typer.Option(
            help="Degrade the LR first: none, jpeg:Q (Pillow, 4:2:0) or h264:CRF / h265:CRF (one yuv420p frame); "
            "repeat for one row each."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """PSNR/SSIM on the Y channel with the standard SR protocol (MATLAB bicubic LR, border crop)."""
    from .data.degradations import LRDegradation
    from .deploy.weights import load_model
    from .measure import evaluate

    settings = [LRDegradation.parse(text) for text in degrade or ["none"]]
    if scale < 1:
        raise UserError(f"--scale must be at least 1, got {scale}")
    if model == "bicubic":
        upscale_fn = evaluate.bicubic(scale)
    else:
        net = load_model(model)
        if net.cfg.scale != scale:
            raise UserError(f"is a x{net.cfg.scale} model, not x{scale}", model)
        upscale_fn = evaluate.network(net)
    skipped: list[str] = []
    pairs = evaluate.load_benchmark(data, scale, warn=skipped.append)
    for reason in skipped:
        err.print(f"skipped: {reason}", markup=False, highlight=False, soft_wrap=True)
    if not pairs:
        raise UserError("no image could be scored", data)
    results = [
        (setting.label, evaluate.evaluate(upscale_fn, evaluate.degrade_pairs(pairs, setting), scale))
        for setting in settings
    ]
    if as_json:
        rows = [
            {"degradation": label, "psnr": r.psnr, "ssim": r.ssim, "halo": r.halo, "per_image": r.per_image}
            for label, r in results
        ]
        report = {"model": model, "scale": scale, "data": str(data), "skipped": skipped, "results": rows}
        print(json.dumps(_json_safe(report), allow_nan=False))
        return
    from rich.table import Table

    table = Table(title=f"{model} x{scale} on {data}")
    table.add_column("image")
    for label, _ in results:
        head = "" if [lab for lab, _ in results] == ["none"] else f"{label} "  # no --degrade: plain heads
        table.add_column(f"{head}PSNR (dB)", justify="right")
        table.add_column(f"{head}SSIM", justify="right")
        table.add_column(f"{head}halo", justify="right")

    def cells(psnr: float, ssim: float, halo: float) -> tuple[str, str, str]:
        return f"{psnr:.2f}", f"{ssim:.4f}", f"{100 * halo:.2f} %"

    for i, row in enumerate(results[0][1].per_image):
        per = [cells(r.per_image[i]["psnr"], r.per_image[i]["ssim"], r.per_image[i]["halo"]) for _, r in results]
        table.add_row(str(row["image"]), *(c for group in per for c in group))
    table.add_row("mean", *(c for _, r in results for c in cells(r.psnr, r.ssim, r.halo)), style="bold")
    out.print(table)


def parse_duration(text: str | None) -> float | None:
    """'90s', '30m', '2h', '1h30m' or plain seconds -> seconds."""
    if text is None:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise UserError(f"cannot read the duration {text!r} (examples: 90s, 30m, 2h, 1h30m)")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


@command()
def train(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="HR image folder (recursive) or DIV2K-style *_HR; required unless --resume."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, log.jsonl, config.json.")] = Path(
        "runs/repsr"
    ),
    scale: Annotated[int, typer.Option("--scale", "-s", help="Upscaling factor the network learns.")] = _T.scale,
    size: Annotated[str, typer.Option(help=f"Model size: {choices(MODEL_SIZES)}.")] = _T.size,
    old_size: Annotated[str | None, typer.Option("--preset", hidden=True)] = None,  # --size's old name (scripts)
    block: Annotated[str, typer.Option(help=f"Training-time block: {choices(BLOCK_NAMES)}.")] = _T.block,
    bn: Annotated[
        str, typer.Option(help=f"RepSR BN: {choices(BN_MODES)} (switch: mini-batch, then population statistics).")
    ] = _T.bn,
    iters: Annotated[
        int,
        typer.Option(
            help="Planned iterations (the default takes days on a CPU: set it); with --resume, a new length for the "
            "run, refused where it would change "
            "the learning rate or BN phase of steps already taken (cosine and multistep scale with the length)."
        ),
    ] = _T.iters,
    batch: Annotated[int, typer.Option(help="Patches per step.")] = _T.batch,
    patch: Annotated[int, typer.Option(help="LR patch side.")] = _T.patch,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = _T.lr,
    schedule: Annotated[str, typer.Option(help=f"{choices(SCHEDULES)}.")] = _T.schedule,
    warmup: Annotated[int, typer.Option(help="Warm-up iterations.")] = _T.warmup,
    bn_switch: Annotated[
        float,
        typer.Option(
            help="BN switch: fraction of iters (<=1) or an iteration; 0: population statistics from the start "
            "(a fine-tune of a finished run: with --init-from, the source's own statistics)."
        ),
    ] = _T.bn_switch,
    bn_batches: Annotated[int, typer.Option(help="Batches averaged for population statistics.")] = _T.bn_batches,
    seed: Annotated[
        int, typer.Option(help="Seed of the initial weights and the batches (a run replays exactly).")
    ] = _T.seed,
    lr_data: Annotated[Path | None, typer.Option(help="Folder of matching LR images.")] = None,
    max_hr_side: Annotated[int | None, typer.Option(help="Shrink larger HR images by an integer factor first.")] = None,
    val: Annotated[Path | None, typer.Option(help="Validation benchmark folder (e.g. Set5).")] = None,
    val_every: Annotated[int, typer.Option(help="Validate every N iterations (0: never).")] = _T.val_every,
    ckpt_every: Annotated[int, typer.Option(help="Write the checkpoint every N iterations.")] = _T.ckpt_every,
    log_every: Annotated[int, typer.Option()] = _T.log_every,
    precision: Annotated[str, typer.Option(help=PRECISION_HELP)] = _T.precision,
    device: DeviceOption = "auto",
    data_workers: Annotated[
        int, typer.Option(help="Threads making the next batches during each step (0: in the step).")
    ] = 1,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoint to start from: e.g. the x4 body for x2, or a smaller model size of this scale "
            "(grown into this one with its function kept)."
        ),
    ] = None,
    loss: Annotated[
        str,
        typer.Option(
            help=f"Loss recipe: {choices(RECIPES)} (l2: a last fine-tune after l1; sharp: adversarial, aiming at "
            "an unsharp-masked target without its rings, started from a real model's checkpoint with --init-from; "
            "sharp-overshoot10 and sharp-usm: earlier sharp recipes, kept to replay their runs; sharp-usm rings)."
        ),
    ] = _T.loss,
    degradation: Annotated[
        str,
        typer.Option(help=f"How LR patches are made: {choices(DEGRADATIONS)} (bicubic: clean, MATLAB-exact)."),
    ] = _T.degradation,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out exactly where it stopped.")] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Replay a run from its config.json (history/RUN/config.json): every setting from the file, except"
            " the options given here, which override it.",
        ),
    ] = None,
    stop_at: Annotated[int | None, typer.Option(help="Stop after this iteration (checkpoint written).")] = None,
    time_limit: Annotated[str | None, typer.Option(help="Stop cleanly after this long, e.g. 2h.")] = None,
) -> None:
    """Train a RepSR network: mini-batch BN first, then population statistics (the BN switch)."""
    from .train.progress import TrainProgress
    from .train.trainer import Trainer

    if data is None and not resume and config is None:
        raise UserError("--data is required (a folder of HR images)")
    if stop_at is not None and stop_at < 1:
        raise UserError(f"--stop-at must be at least 1, got {stop_at}")
    limit = parse_duration(time_limit)
    # by the source's name: typer 0.29 carries its own click, whose enum is not click's
    given = {
        n for n in TrainConfig.__dataclass_fields__ if getattr(ctx.get_parameter_source(n), "name", "") == "COMMANDLINE"
    }
    if "out_dir" in ctx.params and getattr(ctx.get_parameter_source("out_dir"), "name", "") == "COMMANDLINE":
        given.add("out")
    if old_size is not None:
        given.add("size")
    cfg = TrainConfig(
        data=str(data) if data else "",
        block=block,
        bn=bn,
        out=str(out_dir),
        scale=scale,
        size=size if old_size is None else old_size,
        iters=iters,
        batch=batch,
        patch=patch,
        lr=lr,
        schedule=schedule,
        warmup=warmup,
        bn_switch=bn_switch,
        bn_batches=bn_batches,
        seed=seed,
        lr_data=str(lr_data) if lr_data else None,
        max_hr_side=max_hr_side,
        val=str(val) if val else None,
        val_every=val_every,
        ckpt_every=ckpt_every,
        log_every=log_every,
        precision=precision,
        init_from=str(init_from) if init_from else None,
        loss=loss,
        degradation=degradation,
    )
    if config is not None:
        cfg = replayed(config, cfg, given)
    with TrainProgress(out) as progress:
        if data_workers < 0:
            raise UserError(f"--data-workers must be 0 or more, got {data_workers}")
        trainer = Trainer(
            cfg,
            resume=resume,
            device=device,
            data_workers=data_workers,
            on_log=progress.update,
            on_message=progress.say,
            given=given,
        )
        if stop_at is not None and stop_at <= trainer.iteration:
            raise UserError(f"--stop-at {stop_at}: the run is at iteration {trainer.iteration} already", out_dir)
        progress.start(trainer.cfg.iters, trainer.iteration, stop_at)
        try:
            result = trainer.run(stop_at=stop_at, time_limit=limit)
        finally:
            from .distributed import shutdown

            shutdown(trainer.env)
    out.print(
        f"{result.reason} at iteration {result.iteration}/{trainer.cfg.iters}; checkpoint {result.last_checkpoint}"
    )
    if result.warning:
        err.print(f"warning: {result.warning}", markup=False, highlight=False, soft_wrap=True)
    if result.reason in ("interrupted", "terminated"):
        raise typer.Exit(130 if result.reason == "interrupted" else 128 + signal.SIGTERM)


@command()
def plot(
    run_dir: Annotated[Path, typer.Argument(help="Run folder with log.jsonl.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Image to write (default: RUN_DIR/curves.png).")
    ] = None,
) -> None:
    """Plot loss and validation PSNR of a run, with the BN switch marked (needs matplotlib); print its totals."""
    from .train.plot import plot_run
    from .train.runlog import summarize

    path = plot_run(run_dir, output, warn=lambda msg: err.print(f"warning: {msg}", markup=False, highlight=False))
    out.print(summarize(run_dir).line(), highlight=False)
    out.print(f"wrote {path}")


@command()
def models() -> None:
    """List bundled and user models."""
    from rich.table import Table

    from .deploy.weights import available_models, load_model, user_model_dir
    from .schema import size_name

    table = Table(title=f"models (user folder: {user_model_dir()})")
    for col in ("name", "source", "scale", "size", "blocks x channels", "file"):
        table.add_column(col)
    for entry in available_models():
        try:
            cfg = load_model(entry.path).cfg
            size = size_name(cfg.channels, cfg.blocks) or "custom"
            shape = (f"x{cfg.scale}", size, f"{cfg.blocks} x {cfg.channels}")
        except UserError as exc:
            shape = ("?", "?", f"unreadable: {exc}")
        file = f"{entry.path.stat().st_size / 1024:.0f} KiB" if entry.path.is_file() else "-"  # a dangling link
        table.add_row(entry.name, entry.source, *shape, file)
    out.print(table)


@command("bench")
def bench_(
    size: Annotated[
        list[str] | None, typer.Option(help=f"Model size(s) to measure (default: {choices(MODEL_SIZES)}).")
    ] = None,
    scale: Annotated[list[int] | None, typer.Option("--scale", "-s", help="Scale(s) (default: 4).")] = None,
    device: DeviceOption = "auto",
    side: Annotated[int, typer.Option("--side", help="Side of the square LR input, in pixels.")] = 128,
    old_size: Annotated[list[str] | None, typer.Option("--preset", hidden=True)] = None,  # --size's old name
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the fused network.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Measure fused vs unfused vs bicubic throughput and the machine's 3x3-conv peak."""
    from rich.table import Table

    sizes = [s for s in [*(size or []), *(old_size or [])] if not s.isdigit()]
    if sides := [int(s) for s in size or [] if s.isdigit()]:  # `--size 256`: the input side, in older scripts
        side = sides[-1]

    from .measure.speed import bench

    report = bench(sizes or list(MODEL_SIZES), scale or [4], device, (side, side), compile_model)
    if as_json:
        print(json.dumps(report))
        return
    table = Table(title=f"repsr bench on {report['machine']}, LR input {side}x{side}")
    columns = ("size", "scale", "precision", "variant", "output MP/s", "min-max", "GFLOP/s", "% of peak")
    for col in columns:
        table.add_column(col, justify="right")
    peak = report["peak_gflops"]
    for r in report["results"]:
        share = f"{100 * r['gflops'] / peak[r['precision']]:.0f}% of {r['precision']}" if r["gflops"] else ""
        gflops = f"{r['gflops']:.1f}" if r["gflops"] else ""
        spread = f"{r['mp_per_s_min']:.2f}-{r['mp_per_s_max']:.2f}"
        cells = (r["size"], f"x{r['scale']}", r["precision"], r["variant"], f"{r['mp_per_s']:.2f}", spread)
        table.add_row(*cells, gflops, share)
    out.print(table)
    out.print("peak (one wide 3x3 conv): " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items()))
    out.print("MP/s: the median of 5 rounds taken in turns with every other row; min-max: the slowest and fastest")


UNWRAPPED_WIDTH = 10_000  # columns a table may take without a terminal: wide enough never to cut a name or number


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like an error, so partial outputs are removed and child processes ended."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    for stream in (sys.stdout, sys.stderr):  # a file name the terminal's encoding cannot show is escaped, not fatal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    for console in (out, err):  # piped or captured output is never hard-wrapped: a line names a file or a model
        console.soft_wrap = not console.is_terminal
        if not console.is_terminal:  # nor are table cells cut to an assumed 80 columns
            console.width = UNWRAPPED_WIDTH
    for stream in (sys.stdout, sys.stderr):  # a log file or pipe gets each line as it is printed
        if not stream.isatty() and hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    try:
        app(args=argv, prog_name="repsr")
    except UserError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named: a bug, shown in full
            raise
        err.print(f"error: {exc.filename}: {exc.strerror or exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
