"""netperf omni ``-k`` (key=value) output to metrics.

Facts that decide whether a number is right (netperf 2.7 omni):
- ``THROUGHPUT`` is a data rate for STREAM tests (unit in ``THROUGHPUT_UNITS``)
  and transactions/s for RR/CRR; ``TRANSACTION_RATE`` exists only for RR/CRR.
- The latency selectors are filled only with the global ``-j`` option; for
  STREAM tests they time send() calls, not the network, so they are stored
  under ``send_call_*`` names.
- ``LOCAL_CPU_UTIL``/``REMOTE_CPU_UTIL`` (with ``-c``/``-C``) are system-wide.
- ``LOCAL_TRANSPORT_RETRANS`` is -1 when it failed or does not apply, -2 when
  not attempted: both become None.
"""

from __future__ import annotations

from typing import Any

from cnilab.bench.parsers import ParseError, number

_RATE_UNITS = {"10^6bits/s": 1e-3, "10^9bits/s": 1.0, "10^3bits/s": 1e-6, "bits/s": 1e-9}
_LATENCY = {"MIN_LATENCY": "min", "MEAN_LATENCY": "mean", "P50_LATENCY": "p50",
            "P90_LATENCY": "p90", "P99_LATENCY": "p99", "MAX_LATENCY": "max",
            "STDDEV_LATENCY": "stddev"}


def keyvalues(text: str) -> dict[str, str]:
    """The ``KEY=value`` lines of netperf output (the banner line is skipped)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and key.replace("_", "").isalnum() and key.isupper():
            values[key] = value.strip()
    return values


# fields that are never negative; the others use -1/-2 for "does not apply" (netperf's
# sentinels: RT_LATENCY, REQUEST_SIZE of a STREAM test, retransmits, confidence)
_RATES = {"THROUGHPUT", "TRANSACTION_RATE", *_LATENCY}


def _number(values: dict[str, str], key: str) -> float | None:
    raw = values.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ParseError(f"netperf {key} is not a number: {raw[:40]!r}") from None
    return number(value, f"netperf {key}", negative=key not in _RATES)


def parse(text: str) -> dict[str, Any]:
    """Metrics from one netperf invocation's stdout; ParseError if it is not a result."""
    if "establish control" in text or ("netperf: " in text and "=" not in text):
        raise ParseError("netperf could not reach netserver: " + text.strip().splitlines()[-1])
    values = keyvalues(text)
    if "THROUGHPUT" not in values:
        raise ParseError("not netperf omni -k output: no THROUGHPUT=... line")
    if not text.endswith("\n"):
        last = text.rstrip().splitlines()[-1] if text.strip() else ""
        raise ParseError(f"netperf output ends mid-line ({last[:40]!r}): cut off")
    latency = [key for key in _LATENCY if key in values]
    if latency and len(latency) != len(_LATENCY):
        missing = ", ".join(k for k in _LATENCY if k not in values)
        raise ParseError(f"netperf output has some latency fields but not {missing}: cut "
                         "off or damaged")
    units = values.get("THROUGHPUT_UNITS", "")
    protocol = values.get("PROTOCOL", "").lower() or None
    metrics: dict[str, Any] = {"protocol": protocol, "netperf_units": units}
    throughput = _number(values, "THROUGHPUT")
    if throughput is None:
        raise ParseError("netperf THROUGHPUT is empty")
    is_rr = units.startswith("Trans")
    if is_rr:
        metrics["transactions_per_s"] = _number(values, "TRANSACTION_RATE") or throughput
        rt_latency = _number(values, "RT_LATENCY")
        metrics["rt_latency_us"] = rt_latency if rt_latency is not None and rt_latency >= 0 \
            else None
        prefix = "latency"
    else:
        if units not in _RATE_UNITS:
            raise ParseError(f"unknown netperf THROUGHPUT_UNITS {units!r}")
        metrics["throughput_gbps"] = throughput * _RATE_UNITS[units]
        prefix = "send_call_latency"
    for key, name in _LATENCY.items():
        value = _number(values, key)
        if value is not None:
            metrics[f"{prefix}_{name}_us"] = value
    for key, name in (("LOCAL_CPU_UTIL", "local_cpu_percent"),
                      ("REMOTE_CPU_UTIL", "remote_cpu_percent"),
                      ("ELAPSED_TIME", "duration_s"),
                      ("REQUEST_SIZE", "request_size_bytes"),
                      ("RESPONSE_SIZE", "response_size_bytes"),
                      ("LOCAL_SEND_SIZE", "send_size_bytes"),
                      ("CONFIDENCE_LEVEL", "confidence_level_percent"),
                      ("CONFIDENCE_INTERVAL", "confidence_interval_percent"),
                      ("CONFIDENCE_ITERATION", "confidence_iterations"),
                      ("THROUGHPUT_CONFID", "throughput_confidence_percent")):
        value = _number(values, key)
        if value is not None and value >= 0:
            metrics[name] = value
    if not metrics.get("confidence_level_percent"):
        # CONFIDENCE_LEVEL=0: netperf's confidence engine was off; its fields mean nothing.
        for name in ("confidence_level_percent", "confidence_interval_percent",
                     "confidence_iterations", "throughput_confidence_percent"):
            metrics.pop(name, None)
    retrans = _number(values, "LOCAL_TRANSPORT_RETRANS")
    metrics["retransmits"] = int(retrans) if retrans is not None and retrans >= 0 else None
    return metrics
