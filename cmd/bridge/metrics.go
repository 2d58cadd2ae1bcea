package main

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/directory/store"
	"github.com/babelforce/bridge/provisioning"
)

// metrics are bridge's Prometheus metrics, registered on their own registry.
type metrics struct {
	reg            *prometheus.Registry
	runs           *prometheus.CounterVec
	runDuration    *prometheus.HistogramVec
	changes        *prometheus.CounterVec
	guardRefusals  *prometheus.CounterVec
	runErrors      *prometheus.CounterVec
	babelforceCall *prometheus.CounterVec
	babelforceDur  *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	scimRequests   *prometheus.CounterVec
	lastSuccess    prometheus.Gauge
	queueDepth     prometheus.Gauge
	queueOldest    prometheus.Gauge
	upstreamUp     *prometheus.GaugeVec
	liveConnected  prometheus.Gauge
	liveFollowing  prometheus.Gauge
	liveLastEvent  prometheus.Gauge
	liveLag        prometheus.Gauge
	livePeople     prometheus.Gauge
	liveReconnects prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_runs_total", Help: "Reconcile runs by trigger and result (ok, error, refused, dry_run).",
		}, []string{"trigger", "result"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bridge_run_duration_seconds", Help: "Duration of reconcile runs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}, []string{"trigger"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_changes_total", Help: "Changes to babelforce by kind and status (applied, failed, skipped).",
		}, []string{"kind", "status"}),
		runErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_run_errors_total", Help: "Errors of reconcile runs by trigger and phase: read (the directory, babelforce, the state or a side task's setting could not be read) or apply (a change failed, the state could not be saved, the run stopped writing).",
		}, []string{"trigger", "phase"}),
		guardRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_guard_refusals_total", Help: "Runs whose destructive changes a guard refused.",
		}, []string{"trigger"}),
		babelforceCall: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_babelforce_requests_total", Help: "HTTP requests to babelforce by endpoint and status (0 = no answer).",
		}, []string{"endpoint", "status"}),
		babelforceDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bridge_babelforce_request_duration_seconds", Help: "Duration of babelforce requests.",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_babelforce_retries_total", Help: "Retried babelforce requests by endpoint.",
		}, []string{"endpoint"}),
		scimRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_scim_requests_total", Help: "Inbound SCIM requests by method and status.",
		}, []string{"method", "status"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_last_successful_run_timestamp_seconds", Help: "Unix time of the last run that applied without errors.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_queue_depth", Help: "People waiting in the change queue (pushes and live changes not applied yet).",
		}),
		queueOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_queue_oldest_age_seconds", Help: "Age of the oldest change waiting in the change queue (0 when empty).",
		}),
		upstreamUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bridge_upstream_up", Help: "Whether the last background check of an upstream (babelforce, directory, idp_jwks, idp_ui, idp_sso) succeeded (1) or not (0).",
		}, []string{"upstream"}),
		liveConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_live_connected", Help: "Whether the directory's change stream (sync.live) is connected and live (1) or not (0).",
		}),
		liveFollowing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_live_following", Help: "Whether this replica follows the change stream (1) or stands by for another replica / has none (0).",
		}),
		liveLastEvent: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_live_last_event_timestamp_seconds", Help: "Unix time of the last change the stream reported.",
		}),
		liveLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_live_lag_seconds", Help: "How long after the directory's modification time the last change arrived (whole seconds on the directory's side).",
		}),
		livePeople: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_live_people_queued", Help: "People the change stream queued since bridge started.",
		}),
		liveReconnects: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_live_reconnects", Help: "Times the change stream was lost since bridge started.",
		}),
	}
	m.reg.MustRegister(m.runs, m.runDuration, m.changes, m.guardRefusals, m.runErrors, m.babelforceCall,
		m.babelforceDur, m.retries, m.scimRequests, m.lastSuccess, m.queueDepth, m.queueOldest, m.upstreamUp,
		m.liveConnected, m.liveFollowing, m.liveLastEvent, m.liveLag, m.livePeople, m.liveReconnects,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeCall is the babelforce client's call observer.
func (m *metrics) observeCall(ci babelforce.CallInfo) {
	m.babelforceCall.WithLabelValues(ci.Endpoint, strconv.Itoa(ci.Status)).Inc()
	m.babelforceDur.WithLabelValues(ci.Endpoint).Observe(ci.Duration.Seconds())
	if ci.Attempt > 1 {
		m.retries.WithLabelValues(ci.Endpoint).Inc()
	}
}

// observeQueue records the change queue's stats as the worker saw them.
func (m *metrics) observeQueue(st store.QueueStats) {
	m.queueDepth.Set(float64(st.Depth))
	m.queueOldest.Set(st.OldestAge(time.Now()).Seconds())
}

// observeLive records the change stream's status.
func (m *metrics) observeLive(st provisioning.LiveStatus) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	m.liveConnected.Set(b(st.Connected))
	m.liveFollowing.Set(b(st.Following))
	if !st.LastEvent.IsZero() {
		m.liveLastEvent.Set(float64(st.LastEvent.UnixMilli()) / 1000)
	}
	m.liveLag.Set(st.LagSeconds)
	m.livePeople.Set(float64(st.People))
	m.liveReconnects.Set(float64(st.Reconnects))
}

// observeSCIM counts one inbound SCIM request.
func (m *metrics) observeSCIM(method string, status int) {
	m.scimRequests.WithLabelValues(method, strconv.Itoa(status)).Inc()
}

// observeRun records one finished reconcile run.
func (m *metrics) observeRun(r *provisioning.Report) {
	if r == nil {
		return
	}
	result := "ok"
	switch {
	case len(r.Refused) > 0:
		result = "refused"
		m.guardRefusals.WithLabelValues(r.Trigger).Inc()
	case len(r.Errors) > 0:
		result = "error"
	case r.DryRun:
		result = "dry_run"
	}
	m.runs.WithLabelValues(r.Trigger, result).Inc()
	if n := len(r.ReadErrors); n > 0 {
		m.runErrors.WithLabelValues(r.Trigger, provisioning.PhaseRead).Add(float64(n))
	}
	if n := len(r.ApplyFailures); n > 0 {
		m.runErrors.WithLabelValues(r.Trigger, provisioning.PhaseApply).Add(float64(n))
	}
	m.runDuration.WithLabelValues(r.Trigger).Observe(r.Duration.Seconds())
	for _, res := range r.Results {
		m.changes.WithLabelValues(string(res.Change.Kind), res.Status).Inc()
	}
	if result == "ok" {
		m.lastSuccess.Set(float64(r.Finished.Unix()))
	}
}
