package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/apispec"
	"github.com/raftkms/raftkms/client"
)

func TestActions_ListsEveryActionOnce(t *testing.T) {
	code, out, errs := runCtl(t, "actions")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	all := apispec.Actions()
	if len(lines) != len(all) {
		t.Errorf("%d lines, want one per action (%d)", len(lines), len(all))
	}
	seen := map[string]bool{}
	for _, l := range lines {
		seen[strings.Fields(l)[0]] = true
	}
	for _, a := range all {
		if !seen[a.Name] {
			t.Errorf("kmsctl actions does not list %s", a.Name)
		}
	}
	for _, a := range []string{"Encrypt", "CreateKey", "AssumeRole", "CreateUser"} {
		if !seen[a] {
			t.Errorf("kmsctl actions does not list %s", a)
		}
	}
}

// TestActionHelp_ShowsTheTablesParametersRequiredAndExample: `kmsctl
// <Action> --help` shows every parameter of apispec's table (the server's),
// marks the required ones, and gives the example; it sends nothing.
func TestActionHelp_ShowsTheTablesParametersRequiredAndExample(t *testing.T) {
	srv, requests := countingServer(t)
	for _, a := range apispec.Actions() {
		t.Run(a.Name, func(t *testing.T) {
			for _, flag := range []string{"--help", "-h"} {
				code, out, errs := runCtl(t, "--endpoint", srv.URL, a.Name, flag)
				if code != 0 || errs != "" {
					t.Fatalf("%s %s: exit %d, stderr %q", a.Name, flag, code, errs)
				}
				for _, p := range a.Params {
					want := "optional"
					if p.Required {
						want = "required"
					}
					var line string
					for _, l := range strings.Split(out, "\n") {
						if strings.HasPrefix(strings.TrimSpace(l), "--"+p.Name+" ") {
							line = l
						}
					}
					if line == "" || !strings.Contains(line, want) {
						t.Errorf("no line for --%s marked %s in:\n%s", p.Name, want, out)
					}
				}
				if !strings.Contains(out, "Example:\n  kmsctl "+a.Name) {
					t.Errorf("no example in:\n%s", out)
				}
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("--help sent %d requests", n)
	}
	// The mark is the table's: SetKeyPolicy's Policy is required,
	// CreateKey's Description is not.
	_, out, _ := runCtl(t, "SetKeyPolicy", "--help")
	if !strings.Contains(out, "--Policy ") || !strings.Contains(out, "required") {
		t.Errorf("SetKeyPolicy help:\n%s", out)
	}
}

// TestUnknownAction_SuggestsLocallyAndExits2: a mistyped action is refused
// before any request, with the closest actions named.
func TestUnknownAction_SuggestsLocallyAndExits2(t *testing.T) {
	srv, requests := countingServer(t)
	creds := writeCredsFile(t, client.Credentials{AccessKeyId: "AK", AccessKeySecret: "secret", Endpoint: srv.URL})
	for _, tc := range []struct {
		args    []string
		suggest string
	}{
		{[]string{"Encrpyt", "--KeyId", "k"}, "did you mean Encrypt"},
		{[]string{"DescribeKeys", "--KeyId", "k"}, "did you mean DescribeKey"},
		{[]string{"CREATEKEY"}, "did you mean CreateKey"},
		{[]string{"encrypt", "--KeyId", "k"}, "did you mean the action Encrypt"},
		{[]string{"NoSuchAction"}, "unknown action \"NoSuchAction\""},
		{[]string{"Encrpyt", "--help"}, "did you mean Encrypt"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runCtl(t, append([]string{"--credentials", creds}, tc.args...)...)
			if code != exitUsage || out != "" {
				t.Fatalf("exit %d, stdout %q, want exit 2 and nothing on stdout", code, out)
			}
			if !strings.Contains(errs, tc.suggest) {
				t.Errorf("stderr %q does not say %q", errs, tc.suggest)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("unknown actions sent %d requests", n)
	}
}

// TestUnknownParameter_Exits2NamingTheKnownOnes: a parameter the action does
// not take is refused locally; a miscapitalised one gets its right spelling.
func TestUnknownParameter_Exits2NamingTheKnownOnes(t *testing.T) {
	srv, requests := countingServer(t)
	creds := writeCredsFile(t, client.Credentials{AccessKeyId: "AK", AccessKeySecret: "secret", Endpoint: srv.URL})
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"Encrypt", "--KeyID", "k", "--Plaintext", "aGk="}, []string{"--KeyID", "did you mean --KeyId?"}},
		{[]string{"Encrypt", "--keyid=k"}, []string{"did you mean --KeyId?"}},
		{[]string{"Decrypt", "--ciphertextBlob", "x"}, []string{"did you mean --CiphertextBlob?"}},
		{[]string{"Encrypt", "--Bogus", "x"}, []string{"--Bogus", "--KeyId", "--Plaintext", "--EncryptionContext", "--DryRun"}},
		{[]string{"DescribeKey", "--KeyId", "k", "--Plaintext", "x"}, []string{"--Plaintext", "DescribeKey takes --KeyId"}},
		{[]string{"ListUsers", "--UserName", "x"}, []string{"ListUsers takes no parameters"}},
		{[]string{"Encrypt", "--endpiont", "x"}, []string{"did you mean --endpoint?"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runCtl(t, append([]string{"--credentials", creds}, tc.args...)...)
			if code != exitUsage || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2", code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q does not say %q", errs, w)
				}
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("unknown parameters sent %d requests", n)
	}
}

// TestAction_KnownActionAndParametersAreSent: the checks let a right
// command line through, with global flags anywhere.
func TestAction_KnownActionAndParametersAreSent(t *testing.T) {
	srv, requests := countingServer(t)
	creds := writeCredsFile(t, client.Credentials{AccessKeyId: "AK", AccessKeySecret: "secret", Endpoint: srv.URL})
	code, out, errs := runCtl(t, "Encrypt", "--KeyId", "alias/k", "--credentials", creds, "--Plaintext=aGk=", "--show-index", "--DryRun", "true")
	if code != 0 || !strings.Contains(out, "TEST") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if requests.Load() != 1 {
		t.Fatalf("%d requests, want 1", requests.Load())
	}
}

// TestActionTable_RequiredParametersAreTheServers: on a real node, each
// action sent with no parameters is refused naming one of the parameters the
// table marks required — or, for an action with none required, not refused
// for a missing parameter.
func TestActionTable_RequiredParametersAreTheServers(t *testing.T) {
	n, creds, _ := initializedNode(t)
	for _, a := range apispec.Actions() {
		t.Run(a.Name, func(t *testing.T) {
			code, out, errs := ctl(t, creds, n.Endpoint(), a.Name)
			required := a.Required()
			if len(required) == 0 {
				if code == exitService && strings.Contains(errs, "MissingParameter") {
					t.Fatalf("no parameter is marked required, but the server says:\n%s", errs)
				}
				return
			}
			if code != exitService {
				t.Fatalf("exit %d without its required parameters %v (stdout %s)", code, required, out)
			}
			var e struct{ Code, Message string }
			if err := json.Unmarshal([]byte(errs), &e); err != nil {
				t.Fatalf("stderr is not the service's error JSON: %s", errs)
			}
			if e.Code != "MissingParameter" && e.Code != "InvalidParameter" {
				t.Fatalf("code %s (%s), want MissingParameter or InvalidParameter naming one of %v", e.Code, e.Message, required)
			}
			named := false
			for _, r := range required {
				named = named || strings.Contains(e.Message, fmt.Sprintf("%q", r))
			}
			if !named {
				t.Errorf("the server refuses with %q, which names none of the table's required %v", e.Message, required)
			}
		})
	}
}
