package cluster

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	members       *prometheus.GaugeVec   // kms_cluster_members{status}
	raftChanges   *prometheus.CounterVec // kms_cluster_raft_changes_total{change}
	reconcileErrs prometheus.Counter     // kms_cluster_reconcile_errors_total
	joins         *prometheus.CounterVec // kms_cluster_join_attempts_total{result}
	peerRefused   prometheus.Counter     // kms_cluster_peer_verify_failures_total
}

// newMetrics builds the package's collectors and registers them on reg when
// it is not nil. Several nodes share one process in tests, so there are no
// package-level collectors.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kms_cluster_members",
			Help: "Gossip members known to this node, by status.",
		}, []string{"status"}),
		raftChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_cluster_raft_changes_total",
			Help: "Raft configuration changes made by this node's reconciler, by kind.",
		}, []string{"change"}),
		reconcileErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kms_cluster_reconcile_errors_total",
			Help: "Raft configuration changes attempted by the reconciler that failed.",
		}),
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_cluster_join_attempts_total",
			Help: "Gossip join attempts, by result.",
		}, []string{"result"}),
		peerRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kms_cluster_peer_verify_failures_total",
			Help: "Members whose cluster port failed the check (cluster authentication) before being added to Raft or counted for bootstrap.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.members, m.raftChanges, m.reconcileErrs, m.joins, m.peerRefused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
