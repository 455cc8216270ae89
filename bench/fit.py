"""Fitting a minute of 1080x1920 to Discord's 10 MiB and Telegram's 50 MB: speed, fill, SSIM.

Run: .venv/bin/python -m bench.fit             (about 2-3 minutes on an idle 2-core machine)
     .venv/bin/python -m bench.fit --compare   (adds x264 alternatives at each plan; ~15 minutes)
Makes a 60 s 1080x1920 30 fps clip (camera pan over fractal detail, a moving test card, grain,
stereo noise; ~12 Mbit/s H.264 high), fits it with bot.fit.FfmpegFitter and prints per budget:
the plan, encode wall time / clip duration ("speed"; CPU seconds / cores / duration beside it,
which is what the wall ratio comes to on an otherwise idle machine), output bytes / budget and
SSIM of the output scaled back to 1080x1920 against the source. Targets: speed <= 0.5,
85-100% of the budget, the best SSIM reachable at that speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import imageio_ffmpeg

from bot.encode_plan import EncodePlan
from bot.fit import FfmpegFitter, audio_args, video_args
from bot.media import probe

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
DURATION = 60.0
WIDTH, HEIGHT = 1080, 1920
BUDGETS = (("10 MiB (Discord)", 10 * 1024 * 1024), ("50 MB (Telegram)", 50_000_000))
ALTERNATIVES = (
    ("superfast", 1),
    ("veryfast", 1),
    ("faster", 1),
    ("fast", 1),
    ("veryfast", 2),
    ("faster", 2),
)
CORES = os.cpu_count() or 1


def make_source(path: Path) -> None:
    """Real motion and real texture: a pan across a detailed still, an object moving over it,
    temporal grain. Flat test patterns compress far better than video and flatter any encoder."""
    graph = (
        f"mandelbrot=s={WIDTH * 4 // 3}x{HEIGHT * 4 // 3}:rate=30:start_scale=0.05:maxiter=512,"
        "trim=end_frame=1,loop=loop=-1:size=1,setpts=N/30/TB,"
        f"crop={WIDTH}:{HEIGHT}:x='180+170*sin(t*0.7)':y='320+300*sin(t*0.45)'[bg];"
        "testsrc2=s=480x480:rate=30[fg];"
        "[bg][fg]overlay=x='300+250*sin(t*1.3)':y='700+600*cos(t*0.9)',"
        "noise=alls=6:allf=t+u,format=yuv420p[v];"
        "sine=f=220:sample_rate=44100[s];anoisesrc=color=pink:amplitude=0.1:sample_rate=44100[n];"
        "[s][n]amix=inputs=2,aformat=channel_layouts=stereo[a]"
    )
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
         "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-t", str(DURATION),
         # ultrafast for speed of making, with CABAC and 8x8 transforms so it decodes like the
         # High-profile files TikTok serves.
         "-c:v", "libx264", "-preset", "ultrafast", "-x264-params", "cabac=1:8x8dct=1:deblock=1",
         "-b:v", "12M", "-maxrate", "12M", "-bufsize", "24M",
         "-c:a", "aac", "-b:a", "192k", "-movflags", "+faststart", str(path)],
        check=True,
    )  # fmt: skip


def ssim(output: Path, source: Path) -> float:
    """SSIM (all planes) of the output, scaled back to the source size, against the source."""
    result = subprocess.run(
        [FFMPEG, "-hide_banner", "-nostdin", "-i", str(output), "-i", str(source),
         "-lavfi", f"[0:v]scale={WIDTH}:{HEIGHT}:flags=bicubic[a];[a][1:v]ssim",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"SSIM .*All:([\d.]+)", result.stderr)
    if found is None:
        raise RuntimeError(f"no SSIM in ffmpeg's output: {result.stderr[-300:]}")
    return float(found.group(1))


def cpu_seconds() -> float:
    """CPU time of finished child processes (ffmpeg), user and system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CountingFitter(FfmpegFitter):
    """The real fitter, remembering each encode's plan (retries show as more than one)."""

    def __init__(self, ffmpeg_path: str) -> None:
        super().__init__(ffmpeg_path)
        self.plans: list[EncodePlan] = []

    async def encode(
        self,
        source: Path,
        plan: EncodePlan,
        target: Path,
        *,
        on_time: Callable[[float], None] | None = None,
    ) -> None:
        self.plans.append(plan)
        await super().encode(source, plan, target, on_time=on_time)


@dataclass(frozen=True)
class Row:
    label: str
    wall: float
    cpu: float
    size: int
    budget: int
    ssim: float

    def __str__(self) -> str:
        return (
            f"  {self.label:34} speed {self.wall / DURATION:5.2f}"
            f" (cpu {self.cpu / CORES / DURATION:4.2f})"
            f"  budget {self.size / self.budget:6.1%}  SSIM {self.ssim:.4f}"
        )


def two_pass(source: Path, plan: EncodePlan, target: Path, work: Path) -> None:
    """The same plan as libx264 two-pass (first pass with x264's fast first-pass defaults)."""
    log = str(work / "x264-2pass")
    common = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
              "-i", str(source), "-map", "0:v:0", "-map", "0:a:0?", *video_args(plan),
              "-passlogfile", log]  # fmt: skip
    subprocess.run([*common, "-pass", "1", "-an", "-f", "null", "-"], check=True)
    subprocess.run(
        [*common, "-pass", "2", *audio_args(plan), "-movflags", "+faststart", str(target)],
        check=True,
    )


def alternative(
    source: Path, plan: EncodePlan, budget: int, work: Path, preset: str, passes: int
) -> Row:
    """One x264 preset / pass count at the plan's size and bitrate."""
    varied = replace(plan, preset=preset)
    target = work / f"alt-{preset}-{passes}.mp4"
    started, cpu = time.perf_counter(), cpu_seconds()
    if passes == 1:
        asyncio.run(FfmpegFitter(FFMPEG).encode(source, varied, target))
    else:
        two_pass(source, varied, target, work)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    size = target.stat().st_size
    row = Row(f"{preset}, {passes}-pass", wall, cpu, size, budget, ssim(target, source))
    target.unlink()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fit")
    parser.add_argument("--compare", action="store_true", help="also time x264 alternatives")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {CORES} cores, load average {os.getloadavg()[0]:.1f}, "
        f"Python {platform.python_version()}, ffmpeg {Path(FFMPEG).name}"
    )
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        source = work / "source.mp4"
        started = time.perf_counter()
        make_source(source)
        found = probe(source)
        print(
            f"source: {DURATION:.0f} s {found.width}x{found.height} 30 fps {found.vcodec}/"
            f"{found.acodec}, {found.size / 1e6:.1f} MB ({found.size * 8 / DURATION / 1e6:.1f} "
            f"Mbit/s), made in {time.perf_counter() - started:.0f} s"
        )
        for label, budget in BUDGETS:
            out = work / label.split()[0]
            out.mkdir()
            fitter = CountingFitter(FFMPEG)
            started, cpu = time.perf_counter(), cpu_seconds()
            fitted = asyncio.run(fitter.fit(source, found, budget, out))
            wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
            made = probe(fitted)
            plan = fitter.plans[-1]
            audio = f"{plan.audio_kbps} kbit/s AAC" if plan.audio_kbps else "no audio"
            print(
                f"{label}: {plan.width}x{plan.height}, {plan.video_kbps} kbit/s video, {audio}, "
                f"preset {plan.preset}, {len(fitter.plans)} encode(s), playable {made.playable}"
            )
            print(
                Row(
                    "chosen: one-pass ABR + VBV", wall, cpu, made.size, budget, ssim(fitted, source)
                )
            )
            if args.compare:
                for preset, passes in ALTERNATIVES:
                    print(
                        alternative(source, fitter.plans[0], budget, out, preset, passes),
                        flush=True,
                    )
    print(
        f"load average at the end {os.getloadavg()[0]:.1f}"
        f" (above {CORES}: other work shared the cores, wall times are inflated)"
    )


if __name__ == "__main__":
    main()
