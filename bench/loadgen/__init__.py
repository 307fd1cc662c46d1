"""Load generation for the health benchmark: vegeta (a Go HTTP load tool, so the client side
is not Python-bound on a 2-core box), the servers under load, bulk loading and scenarios.

    python -m bench.loadgen install     # go install vegeta into .tools/bin (pinned version)
"""
