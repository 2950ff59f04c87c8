package store

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// Commit hints: a follower that forwarded a write learns its commit from the
// leader's answer, not from a log entry.
//
// hashicorp/raft tells a follower the commit index only in an AppendEntries,
// and sends none after a commit until the next entry (or the commit tick).
// The forwarding follower answers its client once its own FSM has applied
// the write, so the leader used to append a no-op (a nudge) at once after
// every forwarded write: one more entry, and one more fsync on every node,
// per write (a quarter of the entries at 8 clients through a follower), with
// the nudge's fsync on the follower between the commit and the answer.
//
// The leader's answer to a forwarded write now names the entry's index and
// term. Raft's own rule then lets the follower advance its commit index: an
// AppendEntries from the leader of that term whose previous entry (index,
// term) matches the follower's log says that the follower's log up to there
// is the leader's (log matching), and its commit index may move up to it.
// The follower's transport hands Raft that message itself, without the
// network, through the one channel Raft reads RPCs from:
//
//   - an AppendEntries from the leader arriving later that carries the entry
//     (the follower was not in the quorum) gets its LeaderCommitIndex raised
//     to the known commit before Raft sees it;
//   - if the entry has already been handed to Raft, a synthetic, empty
//     AppendEntries follows it: term and previous entry = the entry's, commit
//     index = the entry's index.
//
// Both say only what the leader of that term said (the entry is committed)
// and pass Raft's checks like any AppendEntries (an older term is ignored, a
// previous entry that does not match is refused and changes nothing). The
// order of the RPCs decides which applies, and one goroutine (the pump)
// moves every RPC to Raft, so it knows which AppendEntries it has handed
// over. Other writes still get the leader's delayed nudge
// (CommitNudgeDelay), which also covers a follower of an older version.
type hintPump struct {
	in   <-chan raft.RPC // the network transport's RPCs
	out  chan raft.RPC   // what Raft reads (Consumer)
	kick chan struct{}   // a hint was set (capacity 1)
	stop chan struct{}

	mu   sync.Mutex
	want commitHint // the highest commit learned from the leader's answers

	// commitIndex is Raft's (set once Raft runs; nil before).
	commitIndex atomic.Pointer[func() uint64]
	// hinted counts commits learned by hints (raised AppendEntries and
	// synthetic ones), for kms_raft_commit_hints_total.
	hinted atomic.Uint64

	// The pump's own: the newest index of the newest term among the
	// AppendEntries handed to Raft.
	handedTerm, handedIndex uint64
}

// commitHint is the leader's word that its entry at Index, of Term, is
// committed: from its answer to a forwarded write, or its commit notice
// (whose body it is on the wire).
type commitHint struct {
	Term       uint64             `msgpack:"t"`
	Index      uint64             `msgpack:"i"`
	LeaderID   raft.ServerID      `msgpack:"id"`
	LeaderAddr raft.ServerAddress `msgpack:"a"`
}

func newHintPump(in <-chan raft.RPC) *hintPump {
	p := &hintPump{in: in, out: make(chan raft.RPC), kick: make(chan struct{}, 1), stop: make(chan struct{})}
	go p.run()
	return p
}

// learn records that the leader committed h and has the pump tell Raft.
func (p *hintPump) learn(h commitHint) {
	p.mu.Lock()
	switch {
	case h.Term > p.want.Term, h.Term == p.want.Term && h.Index > p.want.Index:
		p.want = h
	default:
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *hintPump) wanted() commitHint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.want
}

func (p *hintPump) committed() uint64 {
	if f := p.commitIndex.Load(); f != nil {
		return (*f)()
	}
	return 0
}

func (p *hintPump) run() {
	for {
		select {
		case <-p.stop:
			return
		case rpc := <-p.in:
			p.raise(rpc)
			p.hand(rpc)
		case <-p.kick:
			if rpc, ok := p.synthetic(); ok {
				p.hand(rpc)
			}
		}
	}
}

// hand passes rpc to Raft, or drops it at a stop (the network transport
// then answers its sender with an error).
func (p *hintPump) hand(rpc raft.RPC) {
	select {
	case p.out <- rpc:
	case <-p.stop:
	}
}

// raise raises an AppendEntries' commit index to the known commit when the
// request carries (or matches up to) the committed entry, and notes what has
// been handed to Raft.
func (p *hintPump) raise(rpc raft.RPC) {
	a, ok := rpc.Command.(*raft.AppendEntriesRequest)
	if !ok || a.Term == 0 {
		return
	}
	last := a.PrevLogEntry + uint64(len(a.Entries))
	if w := p.wanted(); w.Term == a.Term && w.Index > a.LeaderCommitIndex && w.Index <= last && w.Index > p.committed() {
		a.LeaderCommitIndex = w.Index
		p.hinted.Add(1)
	}
	switch {
	case a.Term > p.handedTerm:
		p.handedTerm, p.handedIndex = a.Term, last
	case a.Term == p.handedTerm && last > p.handedIndex:
		p.handedIndex = last
	}
}

// synthetic is the empty AppendEntries that tells Raft the known commit,
// when the entry has already been handed to Raft and is not yet known
// committed; otherwise a later AppendEntries carrying it will be raised.
func (p *hintPump) synthetic() (raft.RPC, bool) {
	w := p.wanted()
	if w.Index == 0 || w.Index <= p.committed() || w.Term != p.handedTerm || w.Index > p.handedIndex {
		return raft.RPC{}, false
	}
	p.hinted.Add(1)
	return raft.RPC{
		Command: &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{
				ProtocolVersion: raft.ProtocolVersionMax,
				ID:              []byte(w.LeaderID),
				Addr:            []byte(w.LeaderAddr),
			},
			Term:              w.Term,
			Leader:            []byte(w.LeaderAddr),
			PrevLogEntry:      w.Index,
			PrevLogTerm:       w.Term,
			LeaderCommitIndex: w.Index,
		},
		RespChan: make(chan raft.RPCResponse, 1), // nobody reads the answer
	}, true
}

func (p *hintPump) close() {
	close(p.stop)
}
