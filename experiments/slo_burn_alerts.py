"""Which SLO alerts page fast for a fast burn, still catch a slow burn, and stay quiet for a harmless spike?

Setup: one service with a 99.9 % availability SLO over 30 days, clients sending Poisson
requests; the service fails each request with a probability that follows an injected
schedule: a baseline of 0.02 %, a *fast burn* (10 % errors for 30 min: burn rate 100), a
*harmless spike* (10 % errors for 5 min: 1.2 % of the budget), and a *slow burn* (1 % errors
for 16 h: burn rate 10). A 30-day window is mapped onto simulated time with ``time_scale``
(SLO seconds per simulated second; 3600: one simulated second stands for an hour). Three
paging policies read the same request records (common random numbers): a single short window
(5 min at burn rate 14.4), a single long window (6 h at burn rate 6), and the Google SRE
Workbook's multiwindow, multi-burn-rate alerts (page: 1 h and 5 min at 14.4, 6 h and 30 min at
6; ticket: 3 days and 6 h at 1) — Workbook ch. 5 "Alerting on SLOs".

Lesson: the multiwindow, multi-burn-rate policy pages within minutes for the fast burn
(detection ``B·b·w/e`` = 14.4·0.001·1 h/0.1 ≈ 8.6 min), still pages for the slow burn
(6·0.001·6 h/0.01 = 3.6 h) and does not page for the spike; its short windows reset it within
half an hour after the errors stop. A single short window pages quickest but also pages on the
harmless spike (and flaps during the slow burn, where only a few errors fall in 5 minutes); a
single long window ignores the spike but detects late (≈ 22 min for the fast burn) and stays
firing for hours after the errors have stopped.

Reproduces (``validate``): the Workbook's detection time ``B·b·w/e`` for each policy and incident
(Workbook ch. 5, "Alerting on SLOs", §"Multiple burn rate alerts"), the budget each page alert
lets burn before it fires (Table 5-8: 2% for 1 h at 14.4, 5% for 6 h at 6), and no page for a
spike whose errors never lift the 1 h and 6 h windows to their thresholds.
"""

from __future__ import annotations

import math

import pandas as pd

from simulator import Constant, RpcError, Simulation
from simulator.observe.slo import (
    DAY,
    HOUR,
    MINUTE,
    SLO,
    BurnRateAlert,
    alert_series,
    budget_consumed,
    budget_fraction,
    burn_rates,
    episodes,
    score,
    workbook_policy,
)
from simulator.runner import Check, mean_ci95, param, parameters


@parameters
class Params:
    time_scale: float = param(3600.0, unit="SLO s per simulated s", ge=1, le=1e7,
                              help="how much SLO time one simulated second stands for")
    duration_h: float = param(48.0, unit="h (SLO time)", gt=0, le=24 * 90, help="length of the run")
    requests_per_hour: float = param(12000.0, unit="req/h (SLO time)", gt=0, le=1e6, help="client request rate")
    target: float = param(0.999, unit="fraction", gt=0, lt=1, help="SLO target (availability)")
    window_days: float = param(30.0, unit="days", gt=0, le=365, help="SLO compliance window")
    baseline: float = param(0.0002, unit="error ratio", ge=0, le=1, help="background error ratio")
    fast_at_h: float = param(6.0, unit="h", ge=0, help="fast burn starts")
    fast_min: float = param(30.0, unit="min", gt=0, le=10_000, help="fast burn length")
    fast_ratio: float = param(0.1, unit="error ratio", gt=0, le=1, help="error ratio during the fast burn")
    spike_at_h: float = param(14.0, unit="h", ge=0, help="harmless spike starts")
    spike_min: float = param(5.0, unit="min", gt=0, le=10_000, help="harmless spike length")
    spike_ratio: float = param(0.1, unit="error ratio", gt=0, le=1, help="error ratio during the spike")
    slow_at_h: float = param(24.0, unit="h", ge=0, help="slow burn starts")
    slow_h: float = param(16.0, unit="h", gt=0, le=24 * 90, help="slow burn length")
    slow_ratio: float = param(0.01, unit="error ratio", gt=0, le=1, help="error ratio during the slow burn")
    step_s: float = param(30.0, unit="s (SLO time)", gt=0, le=3600, help="alert evaluation interval")
    warmup_h: float = param(2.0, unit="h", ge=0, help="alerts are evaluated from here on, once windows hold data")

    def __post_init__(self) -> None:
        spans = sorted([(self.fast_at_h, self.fast_at_h + self.fast_min / 60, "fast burn"),
                        (self.spike_at_h, self.spike_at_h + self.spike_min / 60, "spike"),
                        (self.slow_at_h, self.slow_at_h + self.slow_h, "slow burn")])
        for (_, e1, n1), (s2, _, n2) in zip(spans, spans[1:]):
            if s2 < e1:
                raise ValueError(f"the {n1} and the {n2} overlap; move fast_at_h/spike_at_h/slow_at_h apart")
        if not self.warmup_h <= spans[0][0]:
            raise ValueError(f"warmup_h={self.warmup_h:g} must end before the first incident at {spans[0][0]:g} h")
        if spans[-1][1] > self.duration_h:
            raise ValueError(f"the {spans[-1][2]} ends at {spans[-1][1]:g} h, after duration_h={self.duration_h:g}")


QUICK = Params(requests_per_hour=4000.0, step_s=60.0)


def arms() -> dict[str, tuple[BurnRateAlert, ...]]:
    return {
        "short window only (5 min @ 14.4)": (BurnRateAlert("5m", 5 * MINUTE, 14.4),),
        "long window only (6 h @ 6)": (BurnRateAlert("6h", 6 * HOUR, 6.0),),
        "multiwindow multi-burn-rate": workbook_policy(),
    }


def incidents(p: Params) -> dict[str, tuple[float, float, float]]:
    """name -> (start, end, error ratio), SLO seconds."""
    return {"fast burn": (p.fast_at_h * HOUR, p.fast_at_h * HOUR + p.fast_min * MINUTE, p.fast_ratio),
            "harmless spike": (p.spike_at_h * HOUR, p.spike_at_h * HOUR + p.spike_min * MINUTE, p.spike_ratio),
            "slow burn": (p.slow_at_h * HOUR, (p.slow_at_h + p.slow_h) * HOUR, p.slow_ratio)}


def simulate(p: Params, seed: int) -> pd.DataFrame:
    """The request frame of one run (simulated seconds)."""
    sim = Simulation(seed=seed)
    ts = p.time_scale
    sim.network(latency=Constant(0.1 / ts))  # 0.1 SLO-seconds each way
    inc = [(s / ts, e / ts, r) for s, e, r in incidents(p).values()]
    u = sim.uniforms("api.failures")

    def handle(msg) -> str:
        now, ratio = sim.now, p.baseline
        for s, e, r in inc:
            if s <= now < e:
                ratio = r
        if u() < ratio:
            raise RpcError("injected")
        return "ok"

    sim.node("api").on("get", handle)
    from models.services import PoissonClient

    PoissonClient(sim, "users", ["api"], rate=p.requests_per_hour * ts / HOUR, timeout_s=60.0 / ts,
                  stop_at=p.duration_h * HOUR / ts)
    sim.run(until=p.duration_h * HOUR / ts)
    return sim.metrics.requests()


def run(p: Params, seed: int) -> dict[str, pd.DataFrame]:
    ts = p.time_scale
    df = simulate(p, seed)
    slo = SLO(target=p.target, window_s=p.window_days * DAY, name="availability")
    step, until = p.step_s / ts, p.duration_h * HOUR / ts
    inc = incidents(p)
    real = [(s / ts, e / ts) for n, (s, e, _) in inc.items() if n != "harmless spike"]
    rows, alerts, fired = [], [], []
    for arm, policy in arms().items():
        series = alert_series(df, slo, policy, step=step, time_scale=ts, start=p.warmup_h * HOUR / ts, until=until)
        pages = episodes(series, ["page"])
        slack = max(a.long_s for a in policy if a.severity == "page") / ts
        total = score(pages, real, slack=slack)
        row = {"arm": arm, "pages": int(total["episodes"]), "false_pages": int(total["false_episodes"]),
               "precision": total["precision"], "recall": total["recall"],
               "tickets": len(episodes(series, ["ticket"]))}
        for name, (s, e, ratio) in inc.items():
            one = score(pages, [(s / ts, e / ts)], slack=slack)
            key = name.split()[0]
            row[f"{key}_paged"] = bool(one["recall"] == 1.0)
            row[f"{key}_detect_min"] = one["detection_s"] * ts / MINUTE
            row[f"{key}_reset_min"] = one["reset_s"] * ts / MINUTE
            det = one["detection_s"] * ts
            row[f"{key}_budget_before_page"] = (budget_fraction(ratio, min(det, e - s), slo)
                                                if math.isfinite(det) else math.nan)
        rows.append(row)
        alerts.append(episodes(series, [a.name for a in policy] + ["page", "ticket"]).assign(arm=arm))
        fired.append(series[["t", "page", "ticket"]].assign(arm=arm))
    budget = budget_consumed(df, slo, step=5 * MINUTE / ts, time_scale=ts, rate=p.requests_per_hour * ts / HOUR,
                             until=until)
    burn = burn_rates(df, slo, (5 * MINUTE, HOUR, 6 * HOUR), step=step, time_scale=ts, until=until)
    inc_rows = [{"incident": n, "start_h": s / HOUR, "end_h": e / HOUR, "error_ratio": r, "burn_rate": r / slo.budget,
                 "budget_spent": budget_fraction(r, e - s, slo), "harmless": n == "harmless spike"}
                for n, (s, e, r) in inc.items()]
    to_h = ts / HOUR
    alerts_df = pd.concat(alerts, ignore_index=True)
    alerts_df[["fired_at", "reset_at"]] *= to_h
    return {"summary": pd.DataFrame(rows), "incidents": pd.DataFrame(inc_rows),
            "alerts": alerts_df.rename(columns={"fired_at": "fired_at_h", "reset_at": "reset_at_h"}),
            "firing": pd.concat(fired, ignore_index=True).assign(t_h=lambda d: d["t"] * to_h),
            "burn": burn.assign(t_h=burn["t"] * to_h), "budget": budget.assign(t_h=budget["t"] * to_h)}


WORKBOOK = "Beyer et al. (eds.), The Site Reliability Workbook (O'Reilly 2018), ch. 5 'Alerting on SLOs'"
# quick: one fast burn after 6 h of baseline (the 6 h windows full), the other incidents out of the way
VALIDATE_QUICK = Params(duration_h=6.75, warmup_h=5.0, fast_at_h=6.0, spike_at_h=6.6, slow_at_h=6.7, slow_h=0.05,
                        requests_per_hour=6000.0)


def validate(quick: bool) -> list[Check]:
    """Detection times against ``B·b·w/e`` (the alert pair that fires first; ``b`` = 1 - target).

    Tolerance: the evaluation step (an alert is seen at the first step after it crosses), plus
    the shift the baseline error ratio e0 gives (the exact crossing is w (B b - e0) / (e - e0)),
    plus 3 standard errors of the crossing time over the seeds: at the threshold the window holds
    K = B b w lambda errors (Poisson, sd sqrt(K)), which accrue at lambda (e - e0) a second.
    """
    p = VALIDATE_QUICK if quick else Params()
    seeds = (1, 2) if quick else (1, 2, 3, 4, 5)
    s = pd.concat([run(p, seed)["summary"] for seed in seeds], ignore_index=True).set_index("arm")
    b, lam = 1 - p.target, p.requests_per_hour / HOUR
    policies = arms()
    names = list(policies)
    checks = []
    cases = [(names[2], "fast"), (names[1], "fast"), (names[0], "fast")]
    if not quick:
        cases += [(names[2], "slow"), (names[1], "slow")]
    inc = incidents(p)
    for arm, key in cases:
        _s, _e, e = inc[f"{key} burn"]
        # the page pairs that can fire on this error ratio; each needs its long window's crossing
        # (the short one crosses first) and the first pair to fire wins
        firing = [a for a in policies[arm] if a.severity == "page" and e > a.burn_rate * b]
        a = min(firing, key=lambda a: a.burn_rate * b * a.long_s / e)
        pub = a.burn_rate * b * a.long_s / e
        exact = a.long_s * (a.burn_rate * b - p.baseline) / (e - p.baseline)
        sd = math.sqrt(a.burn_rate * b * a.long_s * lam) / (lam * (e - p.baseline))
        col = s.loc[arm, f"{key}_detect_min"]
        m, ci = mean_ci95(col.to_numpy(float))
        tol = (p.step_s + abs(pub - exact) + 3 * sd / math.sqrt(len(seeds))) / MINUTE
        setup = (f"{arm}; {key} burn at error ratio {e:g} (baseline {p.baseline:g}), SLO {p.target:g} over "
                 f"{p.window_days:g} days, {p.requests_per_hour:g} req/h, evaluated every {p.step_s:g} s; "
                 f"{len(seeds)} seeds")
        checks.append(Check(
            source=f"{WORKBOOK}, detection time = (1 - SLO) / error ratio x window x burn rate", setup=setup,
            quantity=f"detection time (min), fired by {a.name} at {a.burn_rate:g}x", published=pub / MINUTE,
            measured=m, tolerance=tol, ci95=ci,
            why=f"evaluation step {p.step_s:g} s + baseline shift {abs(pub - exact) / MINUTE:.2f} min + 3 SE of the "
                f"Poisson crossing time (sd {sd / MINUTE:.2f} min per run)"))
        if arm == names[2]:
            scale = e / (b * p.window_days * DAY)  # budget share per second of the incident
            bud = s.loc[arm, f"{key}_budget_before_page"].to_numpy(float)
            bm, bci = mean_ci95(bud)
            checks.append(Check(
                source=f"{WORKBOOK}, Table 5-8 (budget consumption {a.burn_rate * a.long_s / (p.window_days * DAY):.0%}"
                       f" for {a.long_s / HOUR:g} h at {a.burn_rate:g})", setup=setup,
                quantity="share of the 30-day budget spent before the page", published=a.burn_rate * a.long_s /
                (p.window_days * DAY), measured=bm, tolerance=tol * MINUTE * scale, ci95=bci,
                why="the detection time's tolerance, times the incident's budget share per second"))
    if not quick:
        for arm in names[1:]:
            checks.append(Check(
                source=f"{WORKBOOK} (a short spike lifts the 1 h / 6 h windows to e x spike / w < B b)",
                setup=f"{arm}; spike of {p.spike_min:g} min at error ratio {p.spike_ratio:g}; {len(seeds)} seeds",
                quantity="runs that page for the harmless spike", published=0.0,
                measured=float(s.loc[arm, "harmless_paged"].astype(bool).sum()), tolerance=0.0,
                why=f"1 h window peak {p.spike_ratio * p.spike_min / 60:.4f} < 14.4 b = {14.4 * b:.4f}; 6 h "
                    f"window peak {p.spike_ratio * p.spike_min / 360:.5f} < 6 b = {6 * b:.4f}: the 1 h gap is "
                    f"many Poisson sd at this request rate"))
    return checks


def plot(results: dict[str, pd.DataFrame], p: Params) -> dict:
    import matplotlib.pyplot as plt

    inc = results["incidents"]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True,
                                        gridspec_kw={"height_ratios": [2.2, 1.6, 1.2]})
    burn = results["burn"]
    for col, label, c in (("burn_300", "burn rate, 5 min window", "tab:orange"),
                          ("burn_3600", "burn rate, 1 h window", "tab:blue"),
                          ("burn_21600", "burn rate, 6 h window", "tab:green")):
        ax1.plot(burn["t_h"], burn[col].clip(lower=0.03), label=label, color=c, lw=1.1)
    for y, txt in ((14.4, "14.4"), (6.0, "6")):
        ax1.axhline(y, color="grey", ls="--", lw=0.8)
        ax1.text(burn["t_h"].iloc[-1], y, f" {txt}", va="center", fontsize=8, color="grey")
    ax1.set_yscale("log")
    ax1.set_ylabel("burn rate (x budget)")
    for ax in (ax1, ax2, ax3):
        for r in inc.itertuples():
            ax.axvspan(r.start_h, r.end_h, color="lightgrey" if r.harmless else "mistyrose", zorder=0)
    for r in inc.itertuples():
        ax1.text((r.start_h + r.end_h) / 2, 300, f"{r.incident}\n{r.budget_spent:.1%} of budget", ha="center",
                 va="top", fontsize=8)
    ax1.set_ylim(0.02, 400)
    ax1.legend(loc="lower center", fontsize=8, ncol=3)
    al = results["alerts"]
    names = list(results["summary"]["arm"])
    end = inc["end_h"].max() if al["reset_at_h"].isna().all() else max(inc["end_h"].max(), al["reset_at_h"].max())
    end = max(end, results["burn"]["t_h"].iloc[-1])
    for i, arm in enumerate(names):
        for sev, color, dy in (("page", "tab:red", 0.05), ("ticket", "tab:olive", -0.3)):
            e = al[(al["arm"] == arm) & (al["alert"] == sev)]
            bars = [(r.fired_at_h, (end if math.isnan(r.reset_at_h) else r.reset_at_h) - r.fired_at_h)
                    for r in e.itertuples()]
            if bars:
                ax2.broken_barh(bars, (i + dy, 0.25 if sev == "ticket" else 0.5), color=color,
                                label=sev if i == len(names) - 1 or (sev == "ticket") else None)
    ax2.set_yticks([i + 0.3 for i in range(len(names))], names, fontsize=8)
    ax2.set_ylim(-0.4, len(names))
    h, lab = ax2.get_legend_handles_labels()
    uniq = dict(zip(lab, h))
    ax2.legend(uniq.values(), uniq.keys(), loc="upper left", fontsize=8)
    ax2.set_title("when each policy is paging (red) or ticketing (olive)", fontsize=9)
    b = results["budget"]
    ax3.plot(b["t_h"], 100 * b["consumed"], color="black")
    ax3.set_ylabel("budget spent (%)")
    ax3.set_xlabel("SLO time (h)")
    fig.suptitle("Multiwindow burn-rate alerts page fast on a fast burn, catch the slow burn and ignore a harmless "
                 "spike;\na single short window pages on the spike, a single long window detects late and resets "
                 "late", fontsize=10)
    fig.tight_layout()
    return {"slo_burn_alerts": fig}
