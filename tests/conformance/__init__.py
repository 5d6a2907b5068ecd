"""The Toxiproxy conformance suite: the same tests against the real Toxiproxy 2.12.0 server and
against the embedded one (``python -m harness proxy serve``), so that either can stand in for the
other. The behaviour checked is the one docs/TOXIPROXY.md describes, and the tests are modelled on
the real server's own ``*_test.go``.

Run it with ``pytest -m conformance tests/conformance``; ``-k real`` or ``-k embedded`` picks one
server. The only places where the two servers are held to different standards are listed, with
their reasons, in the docstring of :mod:`tests.conformance.test_divergences`.
"""
