package sigstop

import (
	"os/exec"
	"testing"
	"time"
)

func TestStopAndContinue_WaitForEveryThread(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	if err := Stop(pid, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	all, _, err := threadStates(pid)
	if err != nil || !all {
		t.Fatalf("after Stop: all stopped=%v, %v", all, err)
	}
	if err := Continue(pid, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	_, none, err := threadStates(pid)
	if err != nil || !none {
		t.Fatalf("after Continue: none stopped=%v, %v", none, err)
	}
}

func TestState_CommandNamesWithParentheses(t *testing.T) {
	for line, want := range map[string]byte{
		"123 (kmsd) S 1 2 3": 'S',
		"123 (a) b) T 1 2 3": 'T',
		"123 (x)  ) R 1":     'R',
		"123 (kmsd) t 1 2 3": 't',
	} {
		if got, ok := state(line); !ok || got != want {
			t.Errorf("state(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
	if _, ok := state("garbage"); ok {
		t.Error("state accepted a line without a command name")
	}
}

func TestStop_ExitedProcessIsAnError(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := Stop(cmd.Process.Pid, time.Second); err == nil {
		t.Fatal("Stop of a reaped process succeeded")
	}
}
