"""Messages per wall-second through the Kafka-like log: a 12-partition topic (3 brokers,
replication factor 3, acks=all, min.insync.replicas=2, idempotent producer) and a 6-member
consumer group (at-least-once commits), every message recorded in a delivery log and checked.

The producer draws its arrivals per 5 ms tick (a Poisson count) and batches per partition
(linger 5 ms, up to 1,000 records); followers long-poll the leaders; consumers fetch up to
``max.poll.records`` = 1,000 records and handle a batch in one timer. So the kernel handles a
few events per *batch*, and the per-message cost is Python work on each record: building the
tuple, appending it to three replica logs (list slices), the per-record service-time draw, and
three delivery-log appends (send, ack, process). Peak memory is the process's peak resident set
(interpreter, numpy and pandas included): the replicated logs (3 references to each record tuple)
and the delivery log dominate. Measured (2-core box): 1M messages in ~2.5 s of wall time
(~400k msg/s) with ~325 MB peak; the column-native delivery checker then needs ~1.3 s and takes the
peak to ~660 MB (it was ~1 GB with object columns and groupbys).

    python benchmarks/messaging_throughput.py [--messages 1000000] [--rate 200000] [--no-check]
"""

from __future__ import annotations

import argparse
import resource
import time

from models.messaging.scenarios import log_world
from simulator import Constant
from simulator.history.delivery import check_delivery


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=200_000.0, help="simulated messages per second")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-check", action="store_true", help="skip the delivery checker")
    a = ap.parse_args()
    t0 = time.perf_counter()
    w = log_world(a.seed, partitions=12, consumers=6, rate=a.rate, keys=10_000, stop_at=1e9, limit=a.messages,
                  tick_s=0.005, batch_size=1000, max_poll_records=1000, service=Constant(2e-6),
                  session_timeout_s=10.0, heartbeat_interval_s=1.0)
    produce_s = a.messages / a.rate
    w.sim.run(until=produce_s + 2.0)
    t_sim = time.perf_counter() - t0
    processed = sum(c.processed for c in w.consumers)
    line = (f"{a.messages:,} messages, 12 partitions, 6 consumers: simulated {produce_s + 2:.1f} s in {t_sim:.2f} s "
            f"wall -> {processed / t_sim:,.0f} msg/s processed")
    rss_sim = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if not a.no_check:
        t1 = time.perf_counter()
        r = check_delivery(w.log)
        line += (f"; check {time.perf_counter() - t1:.2f} s (lost {r['lost']}, duplicated {r['duplicated']}, "
                 f"order violations {r['order_violations']})")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(line)
    print(f"acked {w.producer.acked:,} / sent {w.producer.sent:,}; processed {processed:,}; "
          f"peak RSS {rss_sim:.0f} MB after simulating, {peak / 2**20:.0f} MB after checking")


if __name__ == "__main__":
    main()
