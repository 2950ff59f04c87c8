package api

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The pre-resolved children count exactly what WithLabelValues on every
// request counted, and a series appears only once it has something in it:
// an action that only failed has no OK series.
func TestMetrics_ResolvedChildrenSameSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.prepare([]string{"unknown", "Encrypt", "Decrypt"})
	m.observe("Decrypt", "Forbidden.KeyNotFound", time.Millisecond)
	m.observe("Encrypt", "OK", time.Millisecond)
	m.observe("Encrypt", "OK", 2*time.Millisecond)
	m.observe("Encrypt", "Rejected.Throttling", time.Millisecond)
	m.observe("OperatorStatus", "OK", time.Millisecond) // not prepared
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var counters, histograms []string
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var labels string
			for _, l := range mt.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + " "
			}
			switch mf.GetName() {
			case "kms_requests_total":
				counters = append(counters, labels+formatCount(mt.GetCounter().GetValue()))
			case "kms_request_duration_seconds":
				histograms = append(histograms, labels+formatCount(float64(mt.GetHistogram().GetSampleCount())))
			}
		}
	}
	slices.Sort(counters)
	slices.Sort(histograms)
	wantCounters := []string{
		"action=Decrypt code=Forbidden.KeyNotFound 1",
		"action=Encrypt code=OK 2",
		"action=Encrypt code=Rejected.Throttling 1",
		"action=OperatorStatus code=OK 1",
	}
	wantHistograms := []string{"action=Decrypt 1", "action=Encrypt 3", "action=OperatorStatus 1"}
	if !slices.Equal(counters, wantCounters) || !slices.Equal(histograms, wantHistograms) {
		t.Fatalf("counters %q\nhistograms %q\nwant %q\n%q", counters, histograms, wantCounters, wantHistograms)
	}
}

func formatCount(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
