package jepsen

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
)

// NemesisEvent is one fault, from when it was injected to when it was healed
// (times in ns since the start of the run, like the history). They are
// written to nemesis.jsonl beside history.jsonl.
type NemesisEvent struct {
	Kind        string   `json:"kind"` // partition, kill, pause, membership
	Description string   `json:"description"`
	Nodes       []string `json:"nodes,omitempty"`
	Start       int64    `json:"start"`
	End         int64    `json:"end"` // 0 while not healed
}

// ReadNemesisFile reads nemesis.jsonl; a missing file is no events.
func ReadNemesisFile(path string) ([]NemesisEvent, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []NemesisEvent
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var ev NemesisEvent
		if err := dec.Decode(&ev); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// NemesisFileBeside is nemesis.jsonl in the directory of a history file.
func NemesisFileBeside(historyPath string) string {
	return filepath.Join(filepath.Dir(historyPath), "nemesis.jsonl")
}

func writeNemesisFile(path string, evs []NemesisEvent) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, ev := range evs {
		if err := enc.Encode(ev); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
