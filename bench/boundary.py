"""Telegram end to end at the process boundary: `python -m bot` as a real process.

Run: .venv/bin/python -m bench.boundary   (also the last part of bench.e2e; about 30 s)
BOT_PYTHON=/path/to/venv/bin/python runs the bot on another interpreter (bot_python below).
Three processes on loopback: the bot (`python -m bot`, default settings, long polling, PORT set
for /metrics), the Telegram Bot API stand-in (in this process, with the driver), and the TikTok
stand-in (a process of its own, bench.standins). Every time is on the stand-ins' clock
(time.monotonic(), shared by the processes): the update handed to the bot by getUpdates ->
its sendVideo arrived (the upload read whole). Every chat is a private chat of its own user.
First it times a fixed Python loop, to tell a slow hour of the machine from a slow bot.

1. a new ~1 MB H.264 clip in a warm process (it answered one clip first): median of 5, one
   after another;
2. 5 new clips at the same moment: until all 5 are answered; then 20; three rounds of the two,
   each time new clips (one run of a burst is one sample of a machine whose speed swings):
   the median and the range;
3. peak RSS of the bot process (VmHWM in /proc/<pid>/status) after the bursts;
4. cache hits through short links (vm.tiktok.com/CODE, all to the warm clip): codes seen before,
   and for context a new code each (then one lookup on the network each),
   N=50, back to back and paced at 10/s (PTB lets the bot make 30 Bot API calls a second);
5. where the time goes, per stage, for one clip (median of the 5 of part 1) and per clip in the
   bursts (the mean over the rounds): resolve, probe, thumbnail, upload and the whole yt-dlp
   fetch from the bot's own reshare_job_stage_seconds (/metrics, read between the runs);
   extract (page request -> media request) and download (media request -> its last byte sent)
   on the TikTok stand-in's clock;
   then the CPU time (user + system, /proc/<pid>/stat) each process used per clip: the bot, the
   TikTok stand-in, and this process (the driver and the Bot API stand-in). On 2 cores these
   bound a burst: a burst of 20 cannot end sooner than 20 x their sum / 2.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import platform
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.standins import TikTokProcess, Timeline
from tests.harness import bot_env
from tests.standins.clips import Clip, make_clip
from tests.standins.telegram_api import ApiCall, FakeBotApi

AUTHOR = "bench"
# Settings passed on to the bot when set here (for A/B runs; otherwise the bot's defaults).
PASSED_ON = ("DOWNLOAD_PROCESS", "MAX_CONCURRENT_DOWNLOADS")
NEW_RUNS = 5
BURSTS = (5, 20)
BURST_ROUNDS = 3
HITS = 50
HIT_PACE_S = 0.1
LIMITER_DRAIN_S = 1.0
STAGES = ("resolve", "download", "fit", "probe", "thumbnail", "upload")


def post_id(n: int) -> str:
    return f"7309444000000{n:06d}"


def post_url(post: str) -> str:
    return f"https://www.tiktok.com/@{AUTHOR}/video/{post}"


WARM_POST = post_id(0)
NEW_POSTS = [post_id(1 + n) for n in range(NEW_RUNS)]
# Round r's burst of `size`: BURST_POSTS[size][r].
BURST_POSTS = {
    size: [
        [post_id(1000 * (r + 1) + 100 * b + n) for n in range(size)] for r in range(BURST_ROUNDS)
    ]
    for b, size in enumerate(BURSTS)
}
# The first KNOWN codes are asked for once before the hits (then they are "seen before").
KNOWN = 5
SHORT_CODES = [f"ZMbound{n:03d}" for n in range(2 * HITS + KNOWN)]


def row(label: str, result: str, target: str = "") -> None:
    print(f"{label:50}{result:>28}   {target}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bot_python() -> str:
    """The interpreter that runs the bot: BOT_PYTHON, or this one. A venv made by the README's
    first command holds no test packages, which the bot would otherwise import: httpx imports
    rich, click and pygments (import-linter's) for its command line, python-telegram-bot
    imports cryptography (trustme's) for Telegram Passport (~10 MiB of its RSS)."""
    return os.environ.get("BOT_PYTHON") or sys.executable


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def children_of(pid: int) -> list[int]:
    """The running children of `pid` (the download process, unless DOWNLOAD_PROCESS=false)."""
    # Each thread lists the children it started (the download process: a to_thread worker).
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return sorted({int(c) for task in tasks for c in (task / "children").read_text().split()})


def private_kib(pid: int) -> int:
    """Memory only this process holds (Private_Clean + Private_Dirty in smaps_rollup)."""
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    fields = dict(line.split(":", 1) for line in lines)
    return sum(int(fields[name].split()[0]) for name in ("Private_Clean", "Private_Dirty"))


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds a process has used (this one when `pid` is None)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU seconds used by the bot, the TikTok stand-in and this process (the driver and the
    Telegram stand-in), per clip between two reads."""

    def __init__(self, bot: int, tiktok: int | None) -> None:
        self._pids = (bot, tiktok, None)

    def read(self) -> tuple[float, ...]:
        bot, *others = self._pids
        assert bot is not None
        with_children = cpu_s(bot) + sum(cpu_s(child) for child in children_of(bot))
        return (with_children, *(cpu_s(pid) for pid in others))

    @staticmethod
    def per_clip(before: tuple[float, ...], after: tuple[float, ...], clips: int) -> list[float]:
        return [(b - a) / clips for a, b in zip(before, after, strict=True)]


class Stages:
    """The bot's reshare_job_stage_seconds sums and counts, read from its /metrics."""

    def __init__(self, url: str) -> None:
        self._url = url

    async def read(self) -> dict[str, tuple[float, float]]:
        async with aiohttp.ClientSession() as session, session.get(self._url) as response:
            text = await response.text()
        found: dict[str, list[float]] = {stage: [0.0, 0.0] for stage in STAGES}
        for family in text_string_to_metric_families(text):
            if family.name != "reshare_job_stage_seconds":
                continue
            for sample in family.samples:
                stage = sample.labels.get("stage", "")
                if stage in found and sample.name.endswith("_sum"):
                    found[stage][0] = sample.value
                elif stage in found and sample.name.endswith("_count"):
                    found[stage][1] = sample.value
        return {stage: (total, count) for stage, (total, count) in found.items()}


def per_clip(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], clips: int
) -> dict[str, float]:
    """Seconds per clip in each stage between two reads (a stage a clip skipped counts 0)."""
    return {stage: (after[stage][0] - before[stage][0]) / clips for stage in STAGES}


class Driver:
    def __init__(self, api: FakeBotApi) -> None:
        self.api = api
        self.chat = 100_000

    def send(self, text: str) -> tuple[int, int]:
        """A user writes in a private chat of their own: (chat, update_id)."""
        self.chat += 1
        self.api.inject_message(text, chat_id=self.chat, user_id=self.chat)
        # inject_message appends the update and nothing ran in between: it is the last one.
        return self.chat, self.api.pending_updates[-1]["update_id"]

    async def answered(
        self, asked: list[tuple[int, int]], within_s: float = 60.0
    ) -> list[tuple[float, ApiCall]]:
        """For each (chat, update), once every chat has its sendVideo: (handed -> arrived, call)."""
        chats = {chat for chat, _ in asked}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            calls = self.api.calls_to("sendVideo")
            mine = {int(c.params["chat_id"]): c for c in calls if int(c.params["chat_id"]) in chats}
            if len(mine) == len(chats):
                break
            await self.api.wait_for_call(
                "sendVideo", count=len(calls) + 1, timeout=deadline - loop.time()
            )
        return [(mine[chat].at - self.api.handed_at[update], mine[chat]) for chat, update in asked]


def fetch_stages(timeline: Timeline, posts: list[str]) -> tuple[list[float], list[float]]:
    """extract (page request -> media request) and download (media request -> body sent)."""
    extract, download = [], []
    for post in posts:
        page, media, sent = (
            timeline.first("page", post),
            timeline.first("media", post),
            timeline.sent(post),
        )
        if page is not None and media is not None and sent is not None:
            extract.append(media - page)
            download.append(sent - media)
    return extract, download


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()


async def measure(work: Path, clip: Clip) -> None:
    posts = [
        WARM_POST,
        *NEW_POSTS,
        *(p for rounds in BURST_POSTS.values() for ps in rounds for p in ps),
    ]
    short = [(code, f"/@{AUTHOR}/video/{WARM_POST}") for code in SHORT_CODES]
    async with (
        TikTokProcess([(post, clip) for post in posts], short) as tiktok,
        FakeBotApi(keep_uploads=False) as api,
    ):
        port = free_port()
        env = bot_env(
            work,
            TELEGRAM_BOT_TOKEN=api.token,
            TELEGRAM_API_URL=api.root,
            DOWNLOAD_PROXY=tiktok.proxy_url,
            DOWNLOAD_VERIFY_TLS="false",
            PORT=str(port),
            LOG_LEVEL="WARNING",
            **{name: os.environ[name] for name in PASSED_ON if name in os.environ},
        )
        log_path = work / "bot.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                bot_python(), "-m", "bot", cwd=work, env=env, stdout=log, stderr=log
            )
        try:
            metrics = Stages(f"http://127.0.0.1:{port}/metrics")
            await run_parts(api, tiktok, process.pid, metrics, clip.size / 1e6)
        except BaseException:
            print(log_path.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            await stop(process)


async def run_parts(
    api: FakeBotApi, tiktok: TikTokProcess, pid: int, stages: Stages, clip_mb: float
) -> None:
    drive = Driver(api)
    await api.wait_for_call("getUpdates", timeout=60)
    row("", "result", "target")
    [(first_s, _)] = await drive.answered([drive.send(post_url(WARM_POST))])
    row("0 first request after start-up (context)", ms(first_s))

    # 1. new clips one after another, /metrics read around each.
    new: list[float] = []
    one_clip: dict[str, list[float]] = {stage: [] for stage in STAGES}
    cpu = Cpu(pid, tiktok.pid)
    cpu_before = cpu.read()
    for post in NEW_POSTS:
        before = await stages.read()
        [(took, _)] = await drive.answered([drive.send(post_url(post))])
        new.append(took)
        for stage, value in per_clip(before, await stages.read(), 1).items():
            one_clip[stage].append(value)
    cpu_used = {1: Cpu.per_clip(cpu_before, cpu.read(), NEW_RUNS)}
    row(
        f"1 new {clip_mb:.1f} MB H.264 clip, warm, median of {NEW_RUNS}",
        f"{ms(statistics.median(new))} ({min(new) * 1000:.0f}-{max(new) * 1000:.0f})",
        "<= 40 ms",
    )

    # 2. bursts.
    burst_stages: dict[int, list[dict[str, float]]] = {size: [] for size in BURSTS}
    burst_whole: dict[int, list[float]] = {size: [] for size in BURSTS}
    walls: dict[int, list[float]] = {size: [] for size in BURSTS}
    burst_cpu: dict[int, list[list[float]]] = {size: [] for size in BURSTS}
    rss_before = vm_kib(pid, "VmHWM")
    for round_ in range(BURST_ROUNDS):
        for size in BURSTS:
            await asyncio.sleep(LIMITER_DRAIN_S)
            before = await stages.read()
            cpu_before = cpu.read()
            asked = [drive.send(post_url(post)) for post in BURST_POSTS[size][round_]]
            answers = await drive.answered(asked)
            burst_cpu[size].append(Cpu.per_clip(cpu_before, cpu.read(), size))
            handed = min(api.handed_at[update] for _, update in asked)
            walls[size].append(max(call.at for _, call in answers) - handed)
            burst_whole[size] += [took for took, _ in answers]
            burst_stages[size].append(per_clip(before, await stages.read(), size))
    targets = {5: "<= 150 ms", 20: "<= 500 ms"}
    for size in BURSTS:
        cpu_used[size] = [statistics.fmean(column) for column in zip(*burst_cpu[size], strict=True)]
        row(
            f"2 {size} new clips at once: all answered, median of {BURST_ROUNDS}",
            f"{ms(statistics.median(walls[size]))} ({min(walls[size]) * 1000:.0f}"
            f"-{max(walls[size]) * 1000:.0f})",
            targets[size],
        )
    row(
        "3 peak RSS of the bot process after the bursts (VmHWM)",
        f"{vm_kib(pid, 'VmHWM') / 1024:.0f} MiB",
        "<= 150 MiB",
    )
    row("    before the bursts", f"{rss_before / 1024:.0f} MiB")
    if "BOT_PYTHON" not in os.environ and importlib.util.find_spec("rich") is not None:
        print("    (this venv holds the test tools, which the bot imports too: see bot_python)")
    for child in children_of(pid):
        # The download process (the default): what it adds is the memory it holds alone.
        peak, alone = vm_kib(child, "VmHWM"), private_kib(child)
        row(
            f"    its download process: peak RSS {peak / 1024:.0f} MiB, private",
            f"{alone / 1024:.0f} MiB",
        )
        row(
            "    the bot's peak RSS + the download process's private memory",
            f"{(vm_kib(pid, 'VmHWM') + alone) / 1024:.0f} MiB",
            "<= 150 MiB",
        )

    # 4. cache hits by short links: codes seen before (the clip's cache entry and the code's
    # post, both kept), and for context codes never seen (one lookup on the network each).
    row(f"4 cache hits via vm.tiktok.com/CODE, N={HITS} each:", "")
    fresh = iter(SHORT_CODES[KNOWN:])
    await drive.answered([drive.send(f"https://vm.tiktok.com/{c}/") for c in SHORT_CODES[:KNOWN]])
    series = (
        ("a code seen before, back to back", 0.0, "known", "median <= 5 ms, p95 <= 10 ms"),
        (f"a code seen before, paced {1 / HIT_PACE_S:.0f}/s", HIT_PACE_S, "known", ""),
        ("a new code each (one lookup each), back to back", 0.0, "new", "(context)"),
        (f"a new code each, paced {1 / HIT_PACE_S:.0f}/s", HIT_PACE_S, "new", "(context)"),
    )
    for label, pace_s, kind, target in series:
        await asyncio.sleep(LIMITER_DRAIN_S)
        hits: list[float] = []
        for n in range(HITS):
            code = SHORT_CODES[n % KNOWN] if kind == "known" else next(fresh)
            started = time.monotonic()
            [(took, _)] = await drive.answered([drive.send(f"https://vm.tiktok.com/{code}/")])
            hits.append(took)
            await asyncio.sleep(max(0.0, pace_s - (time.monotonic() - started)))
        row(
            f"  {label}",
            f"median {statistics.median(hits) * 1000:.1f} ms, p95 {p95(hits) * 1000:.1f} ms",
            target or "median <= 5 ms, p95 <= 10 ms",
        )

    # 5. per stage.
    timeline = await tiktok.timeline()
    print()
    print(
        "5 per stage (ms): one clip = median of the 5 of part 1; burst = mean per clip"
        " (bot: its /metrics; TikTok: the stand-in's clock)"
    )
    print(f"{'stage':52}{'one clip':>10}{'burst of 5':>12}{'burst of 20':>13}")

    def line(label: str, one: float, five: float, twenty: float) -> None:
        print(f"{label:52}{one * 1000:>10.1f}{five * 1000:>12.1f}{twenty * 1000:>13.1f}")

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else math.nan

    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else math.nan

    extract1, download1 = fetch_stages(timeline, NEW_POSTS)
    fetched = {
        size: fetch_stages(timeline, [post for posts in rounds for post in posts])
        for size, rounds in BURST_POSTS.items()
    }
    one = {stage: med(values) for stage, values in one_clip.items()}
    five, twenty = (
        {stage: mean([r[stage] for r in burst_stages[size]]) for stage in STAGES} for size in BURSTS
    )
    line("resolve (bot)", one["resolve"], five["resolve"], twenty["resolve"])
    line(
        "extract (TikTok: page request -> media request)",
        med(extract1),
        mean(fetched[5][0]),
        mean(fetched[20][0]),
    )
    line(
        "download (TikTok: media request -> last byte)",
        med(download1),
        mean(fetched[5][1]),
        mean(fetched[20][1]),
    )
    line("  yt-dlp fetch as a whole (bot 'download')", one["download"], five["download"],
         twenty["download"])  # fmt: skip
    gap = {
        name: values["download"] - mean(ex) - mean(dl)
        for name, values, (ex, dl) in (
            ("one", one, (extract1, download1)),
            ("five", five, fetched[5]),
            ("twenty", twenty, fetched[20]),
        )
    }
    line("    of which outside the two (proxy, TLS, yt-dlp)", gap["one"], gap["five"],
         gap["twenty"])  # fmt: skip
    line("probe (bot)", one["probe"], five["probe"], twenty["probe"])
    line("thumbnail (bot)", one["thumbnail"], five["thumbnail"], twenty["thumbnail"])
    rest = {
        name: values["fit"] - values["probe"] - values["thumbnail"]
        for name, values in (("one", one), ("five", five), ("twenty", twenty))
    }
    line("  rest of fit: remux/re-encode (bot)", rest["one"], rest["five"], rest["twenty"])
    line("upload (bot: sendVideo until answered)", one["upload"], five["upload"],
         twenty["upload"])  # fmt: skip
    whole = (statistics.median(new), mean(burst_whole[5]), mean(burst_whole[20]))

    def outside(values: dict[str, float], total: float) -> float:
        return total - sum(values[s] for s in ("resolve", "download", "fit", "upload"))

    line(
        "outside the stages (queue, slot waits, replier)",
        outside(one, whole[0]),
        outside(five, whole[1]),
        outside(twenty, whole[2]),
    )
    line("whole: handed by getUpdates -> sendVideo arrived", *whole)
    for n, name in enumerate(("bot", "TikTok stand-in", "Telegram stand-in and driver")):
        line(f"CPU used per clip: {name}", *(cpu_used[size][n] for size in (1, *BURSTS)))


def python_loop_ms() -> float:
    """A fixed piece of pure-Python work, timed: the bot's time goes mostly to the interpreter,
    and this machine's speed swings by a third from hour to hour, so runs taken at different
    times can be set side by side by it."""
    started = time.perf_counter()
    total = 0
    for n in range(300_000):
        total += n * n % 7
    return (time.perf_counter() - started) * 1000


async def run() -> None:
    loops = [python_loop_ms() for _ in range(9)]
    print(
        f"machine speed: a fixed Python loop took {statistics.median(loops):.1f} ms"
        f" (median of 9, fastest {min(loops):.1f})"
    )
    with tempfile.TemporaryDirectory(prefix="reshare-boundary-") as name:
        work = Path(name)
        clip = await asyncio.to_thread(
            make_clip, work / "clip.mp4", duration=4.0, width=720, height=1280, bitrate="1900k"
        )
        print(
            f"clip: {clip.duration:.0f} s {clip.width}x{clip.height} H.264/AAC"
            f" ({clip.size / 1e6:.2f} MB); bot: `{bot_python()} -m bot`, default settings"
            + "".join(f", {name}={os.environ[name]}" for name in PASSED_ON if name in os.environ)
        )
        await measure(work, clip)


def section() -> None:
    """This benchmark after another one's (bench.e2e prints it last)."""
    asyncio.run(run())


def main() -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    started = time.perf_counter()
    asyncio.run(run())
    print(f"(whole run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
