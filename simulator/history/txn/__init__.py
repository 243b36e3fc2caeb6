"""Elle-style transactional checking, in parts: ``parse`` (events -> transactions), ``infer`` (dependencies
and non-cycle anomalies per workload), ``graph`` (the dependency graph, components, cycle searches),
``models`` (anomalies -> consistency models) and ``synth`` (serializable histories to test against).
The public entry points live in ``simulator.history.elle``.
"""
