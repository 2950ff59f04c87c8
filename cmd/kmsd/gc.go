package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// Garbage collector defaults (issue 16). A node under load allocates per
// request; with Go's default GOGC=100 the collector ran so often that it
// took a quarter of the CPU on a loaded node. kmsd therefore starts with
// --gc-percent 400 — measured 20–25 % less CPU per Encrypt and ~25 % more
// requests per second, for a peak heap of ~55 MB instead of ~31 MB
// (docs/BENCHMARKS.md) — and a soft memory limit (--memory-limit, default
// 60 % of the memory the process may use: the cgroup's limit or the
// machine's), past which the collector works harder instead of letting the
// heap grow. The GOGC and GOMEMLIMIT environment variables, when set, win.

// DefaultGCPercent is kmsd's GOGC when neither --gc-percent nor GOGC says
// otherwise.
const DefaultGCPercent = 400

// applyGC sets the collector's percent and soft memory limit. memLimit is
// the flag's value: "" (default: 60 % of the available memory), "0" (no
// limit), or a size such as 2GiB or 512MiB.
func applyGC(gcPercent int, memLimit string, logger hclog.Logger) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	limit, err := memoryLimit(memLimit)
	if err != nil {
		return err
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	logger.Debug("garbage collector", "gc_percent", gcPercent, "memory_limit_bytes", limit)
	return nil
}

// memoryLimit turns --memory-limit into bytes (0: none).
func memoryLimit(v string) (int64, error) {
	switch v {
	case "":
		if avail := availableMemory(); avail > 0 {
			return avail / 10 * 6, nil
		}
		return 0, nil
	case "0":
		return 0, nil
	}
	return parseSize(v)
}

// parseSize reads 512MiB, 2GiB, 1.5GiB, 800MB or a number of bytes.
func parseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult, num := 1.0, v
	for _, u := range units {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			mult, num = u.mult, s
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f <= 0 || f*mult > float64(1<<62) {
		return 0, fmt.Errorf("--memory-limit %q is not a size such as 2GiB, 512MiB or 0 (no limit)", v)
	}
	return int64(f * mult), nil
}

// availableMemory is the cgroup (v2) memory limit when there is one, else
// the machine's total memory; 0 when neither can be read.
func availableMemory() int64 {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			if total := totalMemory(); total == 0 || n < total {
				return n
			}
		}
	}
	return totalMemory()
}

func totalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
