#!/usr/bin/env python3
"""write-timeline.py: where one Raft write's time goes, from Go execution traces.

    scripts/write-timeline.py leader DIR LEADER FOLLOWER,FOLLOWER
    scripts/write-timeline.py follower DIR SERVING

DIR holds `go tool trace -d=parsed` text of each node as NODE.txt
(scripts/bench-write-trace.sh makes them). The trace clock is the machine's
monotonic clock, so traces of processes on one machine share a timeline.

leader: for each write the leader's HTTP goroutine served (it blocks in
store.await), the time of each step after the request's bytes woke that
goroutine: the leader's log fsync, its AppendEntries writes, each follower's
read, fsync and answer, the commit, the FSM, the answer to the client.
follower: for each write a follower served (it blocks in fsm.WaitForIndex
after forwarding), when the forward left, when the leader answered, when the
entry was applied locally and when the answer was written.

Prints p25, p50 and p75 of each step in microseconds.
"""
import bisect
import collections
import re
import sys

TRANSITION = re.compile(r'Time=(\d+) GoID=(\d+) (\w+)->(\w+) Reason="([^"]*)"')


def parse(path):
    """The goroutine state transitions of one trace, each with the first
    stack printed under it (the goroutine's own, or its waker's)."""
    events, cur = [], None
    with open(path) as f:
        for line in f:
            if line.startswith('M='):
                if cur:
                    events.append(cur)
                cur = None
                m = TRANSITION.search(line) if 'StateTransition' in line else None
                if m:
                    cur = {'t': int(m.group(1)), 'g': int(m.group(2)), 'from': m.group(3),
                           'to': m.group(4), 'reason': m.group(5), 'stack': [], 'in': None}
            elif cur is not None:
                s = line.strip()
                if s.startswith('TransitionStack='):
                    cur['in'], cur['stack'] = 'stack', []
                elif s.startswith('Stack='):
                    cur['in'] = 'stack' if not cur['stack'] else 'done'
                elif s and not s.startswith('/') and cur['in'] == 'stack':
                    cur['stack'].append(s.split(' @ ')[0])
    if cur:
        events.append(cur)
    events.sort(key=lambda e: e['t'])
    return events


def has(e, sub):
    return any(sub in frame for frame in e['stack'])


def marks(events, rules):
    """Times at which each rule matched. A rule named X.start marks a
    syscall's entry; the goroutine's next Syscall->Running marks X.end."""
    out, insys = collections.defaultdict(list), {}
    for e in events:
        if e['from'] == 'Syscall' and e['g'] in insys:
            out[insys.pop(e['g']) + '.end'].append(e['t'])
        for label, match in rules:
            if match(e):
                out[label].append(e['t'])
                if label.endswith('.start'):
                    insys[e['g']] = label[:-len('.start')]
    return out


def after(times, t):
    i = bisect.bisect_right(times, t)
    return times[i] if i < len(times) else None


def by_goroutine(events):
    g = collections.defaultdict(list)
    for e in events:
        g[e['g']].append(e)
    return g


def leader(d, name, followers):
    events = parse(f'{d}/{name}.txt')
    lm = marks(events, [
        ('leader fsync.start', lambda e: e['to'] == 'Syscall' and has(e, 'syscall.Fsync') and has(e, 'dispatchLogs')),
        ('leader AppendEntries write.start', lambda e: e['to'] == 'Syscall' and has(e, 'pipelineSend')),
        ('leader reads the answer', lambda e: e['from'] == 'Waiting' and e['to'] == 'Runnable' and has(e, 'pipelineDecode')),
        ('leader FSM wakes', lambda e: e['from'] == 'Waiting' and e['to'] == 'Runnable' and has(e, 'runFSM')),
    ])
    fm = {}
    for f in followers:
        fm[f] = marks(parse(f'{d}/{f}.txt'), [
            ('reads', lambda e: e['from'] == 'Waiting' and e['to'] == 'Runnable' and has(e, 'handleConn')),
            ('fsync.start', lambda e: e['to'] == 'Syscall' and has(e, 'syscall.Fsync') and has(e, 'appendEntries')),
            ('answer write.start', lambda e: e['to'] == 'Syscall' and has(e, 'syscall.write') and has(e, 'handleConn')),
        ])
    rows = collections.defaultdict(list)
    for es in by_goroutine(events).values():
        for i, e in enumerate(es):
            if not (e['to'] == 'Waiting' and has(e, 'store.(*Store).await') and has(e, 'net/http.(*conn).serve')):
                continue
            woke = next((x['t'] for x in reversed(es[:i]) if x['from'] == 'Waiting' and x['to'] == 'Runnable'), None)
            rest = es[i + 1:]
            done = next((x['t'] for x in rest if x['from'] == 'Waiting' and x['to'] == 'Runnable'), None)
            k = next((j for j, x in enumerate(rest) if x['to'] == 'Syscall' and has(x, 'syscall.write')), None)
            if woke is None or done is None or k is None:
                continue
            written = next((x['t'] for x in rest[k + 1:] if x['from'] == 'Syscall'), None)
            r = {'the HTTP goroutine waits on Raft': e['t']}
            t = r['leader fsync.start'] = after(lm['leader fsync.start'], woke)
            t = r['leader fsync.end'] = after(lm['leader fsync.end'], t or woke)
            t = r['leader AppendEntries write.start'] = after(lm['leader AppendEntries write.start'], t or woke)
            sent = t
            r['leader AppendEntries write.end'] = after(lm['leader AppendEntries write.end'], t or woke)
            first_answer = None
            for f in followers:
                t = r[f + ' reads'] = after(fm[f]['reads'], sent or woke)
                t = r[f + ' fsync.start'] = after(fm[f]['fsync.start'], t or woke)
                t = r[f + ' fsync.end'] = after(fm[f]['fsync.end'], t or woke)
                t = r[f + ' answer write.start'] = after(fm[f]['answer write.start'], t or woke)
                if t is not None:
                    first_answer = t if first_answer is None else min(first_answer, t)
                r[f + ' answer write.end'] = after(fm[f]['answer write.end'], t or woke)
            t = r['leader reads the answer'] = after(lm['leader reads the answer'], first_answer or woke)
            r['leader FSM wakes'] = after(lm['leader FSM wakes'], t or woke)
            r['the HTTP goroutine wakes'] = done
            r['answer to the client written'] = written
            if any(v is None or v > written for v in r.values()):
                continue
            for label, v in r.items():
                rows[label].append((v - woke) / 1e3)
    report(rows, 'writes through the leader, µs after the request woke its HTTP goroutine')


def follower(d, name):
    rows = collections.defaultdict(list)
    for es in by_goroutine(parse(f'{d}/{name}.txt')).values():
        seen = set()  # a write that waits twice for its index counts once
        for i, e in enumerate(es):
            if not (e['to'] == 'Waiting' and has(e, 'WaitForIndex')):
                continue
            # Back from the local wait: the leader's answer (the transport's
            # read loop woke the call), the forward's waits (the last one
            # begins once its bytes are written), and, past the wait before
            # them (the request's own bytes), the request's arrival.
            j = next((j for j in range(i - 1, -1, -1) if es[j]['from'] == 'Waiting' and has(es[j], 'readLoop')), None)
            if j is None:
                continue
            calls, k = [], j - 1
            while k >= 0 and not (es[k]['to'] == 'Waiting' and not has(es[k], 'clientConn).call')):
                if es[k]['to'] == 'Waiting':
                    calls.append(k)
                k -= 1
            if not calls:
                continue
            a = next((a for a in range(k + 1, calls[-1]) if es[a]['from'] == 'Waiting' and es[a]['to'] == 'Runnable'), None)
            fwd = es[calls[0]]['t']
            rest = es[i + 1:]
            applied = next((x['t'] for x in rest if x['from'] == 'Waiting'), None)
            write = next((x['t'] for x in rest if x['to'] == 'Syscall' and has(x, 'syscall.write')), None)
            if None in (a, fwd, applied, write) or a in seen:
                continue
            seen.add(a)
            t0 = es[a]['t']
            rows['the forward sent (its call waits)'].append((fwd - t0) / 1e3)
            rows["the leader's answer read"].append((es[j]['t'] - t0) / 1e3)
            rows['applied locally'].append((applied - t0) / 1e3)
            rows['the answer written from'].append((write - t0) / 1e3)
    report(rows, 'writes through this follower, µs after the request woke its HTTP goroutine')


def report(rows, title):
    n = len(next(iter(rows.values()), []))
    print(f'{title} ({n} writes)')
    if not n:
        return
    for label in sorted(rows, key=lambda k: sorted(rows[k])[len(rows[k]) // 2]):
        v = sorted(rows[label])
        print('  %-40s p25 %7.1f  p50 %7.1f  p75 %7.1f' % (label, v[len(v) // 4], v[len(v) // 2], v[3 * len(v) // 4]))


if __name__ == '__main__':
    if len(sys.argv) == 5 and sys.argv[1] == 'leader':
        leader(sys.argv[2], sys.argv[3], sys.argv[4].split(','))
    elif len(sys.argv) == 4 and sys.argv[1] == 'follower':
        follower(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
