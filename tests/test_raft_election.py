"""Raft election fidelity: the Figure 2 election-timer rule (regression), pre-vote and
check-quorum (thesis §9.6, §6.2), the storage model's timing, and the Fig. 16 experiment's
censoring and lesson on QUICK."""

import math

import pytest

from experiments import raft_election
from models.replication.consensus import RaftCluster, RaftConfig
from simulator import Constant, LogNormal, Simulation, Uniform

LO, HI, L = 0.15, 0.3, 0.001


def stale_cluster(seed, **cfg):
    sim = Simulation(seed=seed)
    sim.network(latency=Constant(L))
    c = RaftCluster(sim, 5, config=RaftConfig(election_timeout=(LO, HI), heartbeat_s=LO / 2, **cfg))
    c.bootstrap("raft0", entries=3, stale=["raft3", "raft4"])  # raft3/4 lack the last entry: ineligible
    return sim, c


def test_rejected_higher_term_votes_do_not_postpone_eligible_candidates():
    """Regression (Figure 2): seeing a higher term from a RequestVote it rejects must not restart a
    follower's election timer. Every follower last heard the leader at t=0 (the bootstrap's
    heartbeat); the leader crashes at 0.07 s. An eligible follower's timer was set at 0 to at most
    HI, and nothing it receives may restart it (it grants no vote to a stale candidate, hears no
    leader), so an eligible node stands for election by HI <= crash + HI. Under the old rule (restart
    on every step-down) the stale candidates kept postponing them: 18 of these 30 seeds failed."""
    late = []
    for seed in range(30):
        sim, c = stale_cluster(seed)
        sim.at(0.07, sim.nodes["raft0"].crash)
        sim.run(until=2.0)
        first = min((t for t, term, who in c.candidates if who in ("raft1", "raft2")), default=math.inf)
        if first > HI + 1e-9:
            late.append((seed, first))
        assert c.violations == []
        assert c.leader() in ("raft1", "raft2")
    assert late == []


def test_bootstrap_refuses_a_stale_majority_and_bad_names():
    sim = Simulation(seed=0)
    c = RaftCluster(sim, 5)
    with pytest.raises(ValueError, match="not a majority"):
        c.bootstrap("raft0", stale=["raft1", "raft2", "raft3"])
    with pytest.raises(ValueError, match="stale"):
        c.bootstrap("raft0", stale=["raft0"])


def _isolate_follower(pre_vote):
    sim = Simulation(seed=5)
    sim.network(latency=LogNormal(median=0.002, sigma=0.3))
    c = RaftCluster(sim, 5, config=RaftConfig(pre_vote=pre_vote, check_quorum=pre_vote))
    sim.run(until=1.0)
    leader, term, n = c.leader(), c.replicas[c.leader()].term, len(c.elections)
    f = next(x for x in c.names if x != leader)
    cut = sim.net.isolate(f)
    sim.run(until=1.0 + 6 * HI)  # six maximum election timeouts cut off
    sim.net.heal(cut)
    sim.run(until=3.5)
    return c, leader, term, n, f


def test_pre_vote_keeps_a_healed_partitioned_follower_from_deposing_the_leader():
    c, leader, term, n, f = _isolate_follower(pre_vote=True)
    assert c.leader() == leader and c.replicas[leader].term == term and len(c.elections) == n
    assert c.replicas[f].term == term and c.replicas[f].leader == leader  # rejoined without an election
    # without pre-vote the same schedule deposes the leader: the isolated node's term ran ahead
    c2, leader2, term2, n2, _ = _isolate_follower(pre_vote=False)
    assert len(c2.elections) > n2 and c2.replicas[c2.leader()].term > term2
    assert c.violations == [] and c2.violations == []


@pytest.mark.parametrize("check_quorum", [True, False])
def test_check_quorum_leader_cut_off_from_the_majority_steps_down(check_quorum):
    """Check windows are HI long and start at the election, so a leader isolated at t stops
    hearing a majority within the window containing t and steps down by t + 2 HI (+ latency)."""
    sim = Simulation(seed=3)
    sim.network(latency=Constant(L))
    c = RaftCluster(sim, 5, config=RaftConfig(check_quorum=check_quorum))
    sim.run(until=1.0)
    old = c.leader()
    sim.net.isolate(old)
    sim.run(until=1.0 + 2 * HI + 0.01)
    assert (c.replicas[old].role == "leader") is (not check_quorum)
    sim.run(until=2.5)
    assert c.leader() is not None and c.leader() != old or not check_quorum
    assert c.violations == []


@pytest.mark.parametrize("fsync", [None, 0.005])
def test_storage_model_election_and_first_commit_take_the_fsync_time(fsync):
    """Constant one-way latency L and fsync d. Election: the candidate writes its vote (d), its
    RequestVote travels (L), each voter writes term+vote (d) and answers (L): elected 2L + 2d after
    standing. First commit (the no-op): AppendEntries (L), follower writes the entry (d), answers
    (L): committed 2L + d after the election (the leader's own write overlaps). d = 0 without it."""
    lat, d = 0.002, fsync or 0.0
    sim = Simulation(seed=11)
    sim.network(latency=Constant(lat))
    c = RaftCluster(sim, 5, config=RaftConfig(fsync=None if fsync is None else Constant(fsync)))
    sim.run(until=1.0)
    t_e, term, who = c.elections[0]
    t_c = next(t for t, tm, w in c.candidates if tm == term and w == who)
    assert t_e - t_c == pytest.approx(2 * lat + 2 * d, abs=1e-9)
    assert c.commit_times[1] - t_e == pytest.approx(2 * lat + d, abs=1e-9)


@pytest.mark.parametrize("d", [0.001, 0.010])
def test_overlapping_the_candidates_own_write_saves_one_fsync(d):
    """overlap_self_vote: the RequestVote leaves at once (L), voters write (d) and answer (L), and
    the candidate takes office when both the majority's votes (2L + d) and its own write (d) are
    in: elected max(2L + d, d) = 2L + d after standing, one fsync sooner than without overlap."""
    lat = 0.002
    sim = Simulation(seed=11)
    sim.network(latency=Constant(lat))
    c = RaftCluster(sim, 5, config=RaftConfig(fsync=Constant(d), overlap_self_vote=True))
    sim.run(until=1.0)
    t_e, term, who = c.elections[0]
    t_c = next(t for t, tm, w in c.candidates if tm == term and w == who)
    assert t_e - t_c == pytest.approx(2 * lat + d, abs=1e-9)
    assert not c.violations


@pytest.mark.parametrize("sync", [False, True])
def test_leader_append_sync_delays_the_first_append_entries_by_two_writes(sync):
    """leader_append_sync (LogCabin before d021532): the new leader writes its no-op entry's file
    and then the metadata (two writes of d) before its first AppendEntries leaves, so followers
    hear it L + 2d after the election; without it, L. Constant L and d, so exact to rounding."""
    lat, d = 0.002, 0.003
    sim = Simulation(seed=11)
    sim.network(latency=Constant(lat))
    c = RaftCluster(sim, 5, config=RaftConfig(fsync=Constant(d), leader_append_sync=sync))
    sim.run(until=1.0)
    t_e, term, who = c.elections[0]
    heard = sorted(c.recognitions[term].values())
    assert len(heard) == 4
    assert heard[0] - t_e == pytest.approx(lat + (2 * d if sync else 0.0), abs=1e-9)
    assert not c.violations


def test_ranges_that_never_elect_are_reported_censored_not_dropped():
    p = raft_election.Params(ranges_ms=((150.0, 150.0), (150.0, 300.0)), trials=5, horizon_s=1.0)
    r = raft_election.run(p, seed=0)
    s = r["summary"].set_index("range")
    lock = s.loc["150–150 ms"]  # equal timeouts: every survivor stands at once, forever
    assert lock.censored == 5 and lock.censored_fraction == 1.0 and math.isnan(lock.median_ms)
    assert lock.restricted_mean_ms > 900  # censored trials count at the horizon
    assert s.loc["150–300 ms"].censored == 0
    assert len(r["trials"]) == 10  # every trial kept
    raft_election.plot(r, p)


def test_params_refuse_bad_ranges():
    with pytest.raises(ValueError, match="ranges_ms"):
        raft_election.Params(ranges_ms=((300.0, 150.0),))
    with pytest.raises(ValueError, match="fsync_ms"):
        raft_election.Params(fsync_ms=20.0, broadcast_ms=15.0)


def test_quick_lesson_randomness_ends_split_votes_and_short_timeouts_are_faster():
    s = raft_election.run(raft_election.QUICK, seed=1)["summary"].set_index("range")
    narrow, some, wide, short = (s.loc[x] for x in ("150–151 ms", "150–155 ms", "150–300 ms", "50–100 ms"))
    # 1 ms of randomness (whole-ms timeouts, LogCabin): votes split round after round, seconds of downtime
    assert narrow.restricted_mean_ms > 1000
    assert narrow.restricted_mean_ms > some.restricted_mean_ms > 1.5 * wide.restricted_mean_ms  # paper: 287 vs ~150
    assert narrow.split_votes_per_election > 10 * max(wide.split_votes_per_election, 0.1)
    assert wide.censored == 0 and wide.max_ms < 2 * HI * 1e3 + 100  # at most ~2 rounds
    assert short.mean_ms < wide.mean_ms  # a shorter range elects sooner
    # the minimum possible downtime is about half the minimum timeout (paper §9.3)
    assert wide.median_ms > 150 / 2


def test_bootstrap_lengths_gives_each_follower_its_own_log_and_commits_what_a_majority_holds():
    sim = Simulation(seed=3)
    sim.network(latency=Constant(0.001))
    c = RaftCluster(sim, 5)
    c.bootstrap(c.names[0], entries=5, lengths={c.names[1]: 0, c.names[2]: 3, c.names[3]: 1, c.names[4]: 2})
    held = [len(c.replicas[x].log) - 1 for x in c.names]
    assert held == [5, 0, 3, 1, 2]
    # the third-longest of five holds 2 entries: a majority (5, 3, 2) holds those
    assert [c.replicas[x].commit_index for x in c.names] == [2, 0, 2, 1, 2]
    with pytest.raises(ValueError, match="lengths"):
        RaftCluster(Simulation(seed=3), 5).bootstrap("raft0", entries=2, lengths={"raft1": 3})


def test_thesis_logs_differ_only_the_longest_live_log_wins_and_elections_take_longer():
    """Thesis §9.5 / AvailSim --logs diff, 2 of 5 down: the three live servers must all vote, so only
    the longest live log can win; a voter with a longer log rejects the others without restarting its
    timer, so terms pass with no eligible candidate: the figure's means give 714.7 / 631.6 = 1.13."""
    wan = dict(n=5, failed=2, timeout_s=(0.3, 0.6), latency=Uniform(0.030, 0.040))
    same = raft_election.avail_runs(150, 5, **wan)
    diff = raft_election.avail_runs(150, 5, logs="diff", **wan)
    assert same.elected_s.notna().all() and diff.elected_s.notna().all()
    assert diff.elected_s.mean() > 1.05 * same.elected_s.mean()
    # AvailSim times the leader that stays: never before the first leader elected
    assert (diff.elected_s >= diff.first_elected_s).all()
    assert (diff.leader_log_rank == 0).all()
    one_down = raft_election.avail_runs(60, 5, logs="diff", **{**wan, "failed": 1})
    assert set(one_down.leader_log_rank) <= {0, 1}  # 1 down: the second-longest wins on the two shorter votes
    with pytest.raises(ValueError, match="logs"):
        raft_election.avail_trial(seed=1, i=0, logs="stale", **wan)


def test_thesis_pre_vote_costs_one_round_trip_per_candidacy():
    """§9.6: with pre-vote a candidacy waits one more round trip, 2 x E[U(30, 40)] = 70 ms, on the same
    timers (common random numbers); 200 elections: SE of the difference ~10 ms, so 70 ± 35."""
    wan = dict(n=5, failed=1, timeout_s=(0.3, 0.6), latency=Uniform(0.030, 0.040))
    base = raft_election.avail_runs(200, 6, **wan).elected_s
    pre = raft_election.avail_runs(200, 6, pre_vote=True, **wan).elected_s
    assert (pre.mean() - base.mean()) * 1e3 == pytest.approx(70, abs=35)


def test_pre_vote_after_every_live_server_split_the_vote_still_elects_a_leader():
    """Regression: with pre-vote, WAN setup, trial 142 of seed 14 has all four live servers stand for
    term 2 at once (each votes for itself: a 1-1-1-1 split). Their timers then elapse as candidates
    and every pre-vote round is granted by all peers; the grants must count for a candidate as for a
    follower (AvailSim 'zookeeper': a timed-out Candidate becomes Candidate{pre: true}), else no
    server ever raises its term again and no leader is elected in 60 s. Same trial without the
    split's livelock: a leader of term 3 elected within a few timeouts."""
    wan = dict(n=5, failed=1, timeout_s=(0.3, 0.6), latency=Uniform(0.030, 0.040))
    r = raft_election.avail_trial(seed=14, i=142, pre_vote=True, **wan)
    assert r["term2_won"] is False  # the split term is still there: the trial replays the failing case
    assert r["elected_s"] == pytest.approx(r["first_elected_s"]) and r["elected_s"] < 3 * 0.6
    # the mechanism directly: every live server a candidate of term 2, then a term-3 leader
    sim = Simulation(seed=raft_election.trial_seed(14, 142))
    sim.network(latency=wan["latency"])
    c = RaftCluster(sim, 5, config=RaftConfig(election_timeout=(0.3, 0.6), heartbeat_s=0.15, pre_vote=True))
    c.bootstrap(c.names[0], entries=5)
    sim.at(0.0, sim.nodes[c.names[0]].crash)
    sim.run(until=0.6)
    assert {who for _, term, who in c.candidates if term == 2} == set(c.names[1:])
    assert all(c.replicas[x].role == "candidate" for x in c.names[1:])
    sim.run(until=3.0)
    assert c.leader() is not None and c.replicas[c.leader()].term == 3
