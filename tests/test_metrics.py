"""Prometheus metrics: what is counted, by which labels, and the multiprocess switch."""

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from convlens.app.serving.metrics import MetricsMiddleware, ServiceMetrics


def samples(m: ServiceMetrics) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_predictions_batches_and_queue_depth_are_counted_by_their_labels(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    m = ServiceMetrics()
    m.count_prediction("article", 7)
    m.count_prediction("article", 7)
    m.count_prediction("mlp", 1)
    m.observe_batch(16, 0.001, 0.004)
    m.queue_depth.labels("shipped").set(5)
    s = samples(m)
    assert s[("convlens_predictions_total", (("digit", "7"), ("model", "article")))] == 2
    assert s[("convlens_predictions_total", (("digit", "1"), ("model", "mlp")))] == 1
    assert s[("convlens_inference_batch_size_sum", ())] == 16
    assert s[("convlens_inference_queue_depth", (("model", "shipped"),))] == 5


def test_middleware_counts_by_route_template_and_status_and_tracks_in_flight():
    m = ServiceMetrics()
    seen_in_flight = []

    class Route:
        path = "/v1/feature-maps/{layer}.png"

    async def app(scope, receive, send):
        seen_in_flight.append(m.in_flight)
        scope["route"] = Route()
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def noop(message):
        return None

    mw = MetricsMiddleware(app, m)
    asyncio.run(mw({"type": "http", "method": "POST", "path": "/v1/feature-maps/conv9.png"}, None, noop))
    s = samples(m)
    key = (("endpoint", "/v1/feature-maps/{layer}.png"), ("method", "POST"), ("status", "404"))
    assert s[("convlens_http_requests_total", key)] == 1
    assert seen_in_flight == [1] and m.in_flight == 0
