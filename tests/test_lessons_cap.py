"""The CAP and Raft-election experiments show their lessons on QUICK runs."""

from experiments import cap_partition, raft_election


def test_cp_refuses_the_minority_and_stays_linearizable_ap_answers_but_is_stale_and_loses_writes():
    s = cap_partition.run(cap_partition.QUICK, seed=1)["summary"]
    side = s.set_index(["arm", "side"])
    cp, ap = "CP: Raft", "AP: LWW eventual"
    assert side.loc[(cp, "minority side"), "availability_during"] == 0.0
    assert side.loc[(cp, "majority side"), "availability_during"] > 0.95
    assert side.loc[(ap, "minority side"), "availability_during"] == 1.0
    assert side.loc[(ap, "majority side"), "availability_during"] == 1.0
    tot = s[s.side == "all"].set_index("arm")
    assert bool(tot.loc[cp, "linearizable"]) and tot.loc[cp, "stale_reads"] == 0 and tot.loc[cp, "lost_writes"] == 0
    assert not bool(tot.loc[ap, "linearizable"]) and tot.loc[ap, "stale_reads"] > 0
    assert tot.loc[ap, "convergence_after_heal_s"] < 2.0  # anti-entropy converges soon after the heal


def test_narrow_election_timeout_ranges_split_votes():
    s = raft_election.run(raft_election.QUICK, seed=2)["summary"].set_index("width_ms")
    narrow, wide = s.loc[1], s.loc[150]
    assert narrow.split_votes_per_election > 2 and wide.split_votes_per_election < 0.5
    assert narrow.mean_election_s > 2 * wide.mean_election_s
