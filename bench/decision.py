"""Median time of one routing decision with ten years of campaigns loaded (target: under 20 microseconds).

Run: python bench/decision.py        (from the project root, in its virtualenv)

Ten years of GW and New Year windows are proposed by rule (2027-2036) and added to the shipped ones, each on the
shipped part-day New Year plan, so every decision walks shifts, date exceptions and partner hours. Instants are
drawn inside and outside windows; each decision is `Routing.decide(instant, option, step)`. Chains change only at
shift and hours boundaries, so each (plan, JST date) is worked out once and then looked up; the cold figure is
that first decision of a day.
"""

from __future__ import annotations

import datetime as dt
import platform
import random
import statistics
import time
from pathlib import Path

import yaml

from routing import load_routing
from routing.propose import propose, render_yaml

ROOT = Path(__file__).parents[1]


def ten_years(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "routing" / "routing.yaml").read_text(encoding="utf-8"))
    extra = yaml.safe_load(render_yaml([p for y in range(2027, 2037) for p in propose(y)], dt.date(2026, 11, 23)))
    for c in extra:
        c["plan"] = "newyear-2026"
    data["campaigns"] += extra
    path = tmp / "routing-10y.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        routing = load_routing(ten_years(Path(tmp)))
    rng = random.Random(9999)
    options = list(routing.plans["default"])
    inside = [c.opens + (c.closes - c.opens) * rng.random() for c in routing.campaigns for _ in range(200)]
    outside = [c.closes + dt.timedelta(days=rng.randint(1, 60)) for c in routing.campaigns for _ in range(20)]
    cases = [(t, rng.choice(options), rng.randint(0, 3)) for t in inside + outside]
    rng.shuffle(cases)
    decide = routing.decide
    for t, o, s in cases[:2000]:  # warm up
        decide(t, o, s)
    per_call = []
    batch = 1000
    for i in range(0, len(cases) - batch + 1, batch):
        chunk = cases[i:i + batch]
        start = time.perf_counter_ns()
        for t, o, s in chunk:
            decide(t, o, s)
        per_call.append((time.perf_counter_ns() - start) / batch / 1000)
    cold = []
    for t, o, s in cases[:300]:  # the first decision of a plan's day works out that day's table
        routing._day.cache_clear()
        start = time.perf_counter_ns()
        decide(t, o, s)
        cold.append((time.perf_counter_ns() - start) / 1000)
    offered = []
    for t, _, _ in cases[:5000]:
        start = time.perf_counter_ns()
        routing.offered(t)
        offered.append((time.perf_counter_ns() - start) / 1000)
    print(f"campaigns loaded: {len(routing.campaigns)} ({routing.campaigns[0].opens:%Y} to "
          f"{routing.campaigns[-1].closes:%Y}); decisions timed: {len(per_call) * batch}")
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"decide(): median {statistics.median(per_call):.2f} us per decision "
          f"(batches of {batch}; min {min(per_call):.2f}, max {max(per_call):.2f})")
    print(f"decide() on a day not yet worked out (once per plan and date): median {statistics.median(cold):.0f} us")
    print(f"offered(): median {statistics.median(offered):.2f} us (all options at one instant, the menu's question)")
    print("target: decide() under 20 us")


if __name__ == "__main__":
    main()
