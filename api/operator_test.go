package api_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/raftkms/raftkms/client"
)

// The operator endpoints and the index headers, as docs/API.md describes
// them.

func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

func TestOperator_Endpoints(t *testing.T) {
	tn := startNode(t)
	ctx := context.Background()

	t.Run("health", func(t *testing.T) {
		var h struct {
			Ready  bool
			NodeId string
		}
		if status := getJSON(t, tn.Endpoint()+"/v1/health", &h); status != 200 || !h.Ready || h.NodeId != tn.ID() {
			t.Errorf("HTTP %d %+v", status, h)
		}
	})

	t.Run("status", func(t *testing.T) {
		var s struct {
			NodeId, RaftState, Leader string
			AppliedIndex              uint64
			Initialized               bool
			Members                   []struct {
				NodeId       string
				Voter, Alive bool
			}
		}
		if status := getJSON(t, tn.Endpoint()+"/v1/status", &s); status != 200 {
			t.Fatalf("HTTP %d", status)
		}
		if s.NodeId != tn.ID() || s.RaftState != "Leader" || s.Leader != tn.ID() || s.AppliedIndex == 0 || !s.Initialized {
			t.Errorf("status %+v", s)
		}
		if len(s.Members) != 1 || !s.Members[0].Voter || !s.Members[0].Alive {
			t.Errorf("members %+v", s.Members)
		}
		var h struct {
			CatalogueHash string
			HashIndex     uint64
		}
		getJSON(t, tn.Endpoint()+"/v1/status?hash=1", &h)
		if want, idx := tn.FSM().Hash(); h.CatalogueHash != hex.EncodeToString(want[:]) || h.HashIndex != idx {
			t.Errorf("status hash %+v, FSM %x at %d", h, want, idx)
		}
	})

	t.Run("second init", func(t *testing.T) {
		before := tn.hash()
		_, err := tn.V3.DoUnsigned(ctx, http.MethodPost, "/v1/operator/init", nil, nil, nil)
		wantAPIError(t, err, 409, "Rejected.AlreadyInitialized")
		if tn.hash() != before {
			t.Error("the catalogue changed")
		}
		_, err = tn.V3.DoUnsigned(ctx, http.MethodGet, "/v1/operator/init", nil, nil, nil)
		wantAPIError(t, err, 405, "UnsupportedHTTPMethod")
	})

	t.Run("instances", func(t *testing.T) {
		resp, err := tn.V3.Do(ctx, http.MethodPost, "/v1/operator/instances", nil, strings.NewReader(`{"Name":"second"}`), http.Header{"Content-Type": {"application/json"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var inst struct{ InstanceId, InstanceName, Type string }
		json.NewDecoder(resp.Body).Decode(&inst)
		if !strings.HasPrefix(inst.InstanceId, "kst-") || inst.InstanceName != "second" || inst.Type != "software" || resp.Header.Get(client.HeaderIndex) == "" {
			t.Errorf("instance %+v, index %q", inst, resp.Header.Get(client.HeaderIndex))
		}
		big, err := tn.V3.Do(ctx, http.MethodPost, "/v1/operator/instances", url.Values{"Name": {"big"}, "KeyQuota": {"1000000"}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer big.Body.Close()
		var bigInst struct{ KeyQuota int }
		if json.NewDecoder(big.Body).Decode(&bigInst); bigInst.KeyQuota != 1000000 {
			t.Errorf("KeyQuota=1000000 made an instance of %d keys", bigInst.KeyQuota)
		}
		before := tn.hash()
		_, err = tn.V3.DoUnsigned(ctx, http.MethodPost, "/v1/operator/instances", nil, nil, nil)
		wantAPIError(t, err, 400, "IncompleteSignature")
		_, err = tn.V3.Do(ctx, http.MethodPost, "/v1/operator/instances", nil, strings.NewReader("Type=hardware"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		wantAPIError(t, err, 400, "InvalidParameter")
		for _, bad := range []string{"lots", "0x10", "-5", "10000001"} {
			_, err = tn.V3.Do(ctx, http.MethodPost, "/v1/operator/instances", url.Values{"KeyQuota": {bad}}, nil, nil)
			wantAPIError(t, err, 400, "InvalidParameter")
		}
		if tn.hash() != before {
			t.Error("the catalogue changed")
		}
	})

	t.Run("snapshot", func(t *testing.T) {
		resp, err := tn.V3.Do(ctx, http.MethodGet, "/v1/operator/snapshot", nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		snap, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Type") != "application/octet-stream" || len(snap) == 0 || resp.Header.Get(client.HeaderIndex) == "" {
			t.Errorf("snapshot: %s, %d bytes, index %q", resp.Header.Get("Content-Type"), len(snap), resp.Header.Get(client.HeaderIndex))
		}
		before := tn.hash()
		_, err = tn.V3.DoUnsigned(ctx, http.MethodGet, "/v1/operator/snapshot", nil, nil, nil)
		wantAPIError(t, err, 400, "IncompleteSignature")
		_, err = tn.V3.DoUnsigned(ctx, http.MethodPost, "/v1/operator/snapshot", nil, bytes.NewReader(snap), nil)
		wantAPIError(t, err, 403, "Forbidden.NoPermission")
		damaged := append([]byte(nil), snap...)
		damaged[len(damaged)/2] ^= 1
		_, err = tn.V3.Do(ctx, http.MethodPost, "/v1/operator/snapshot", nil, bytes.NewReader(damaged), nil)
		wantAPIError(t, err, 400, "InvalidSnapshot")
		_, err = tn.V3.Do(ctx, http.MethodPost, "/v1/operator/snapshot", nil, bytes.NewReader(snap[:len(snap)/2]), nil)
		wantAPIError(t, err, 400, "InvalidSnapshot")
		_, err = tn.V3.Do(ctx, http.MethodDelete, "/v1/operator/snapshot", nil, nil, nil)
		wantAPIError(t, err, 405, "UnsupportedHTTPMethod")
		if tn.hash() != before {
			t.Error("the catalogue changed")
		}
	})

	t.Run("metrics", func(t *testing.T) {
		tn.must(t, "ListKeys", nil, nil)
		resp, err := http.Get(tn.Endpoint() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`kms_requests_total{action="ListKeys",code="OK"}`, "kms_request_duration_seconds", `kms_keys{state="Enabled"}`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("unknown path", func(t *testing.T) {
		_, err := tn.V3.Do(ctx, http.MethodGet, "/v2/nothing", nil, nil, nil)
		wantAPIError(t, err, 404, "InvalidPath.NotFound")
	})

	t.Run("method", func(t *testing.T) {
		_, err := tn.V3.Do(ctx, http.MethodPut, "/", nil, nil, nil)
		wantAPIError(t, err, 405, "UnsupportedHTTPMethod")
	})
}

func TestIndexHeaders(t *testing.T) {
	tn := startNode(t)
	ctx := context.Background()
	write := tn.must(t, "CreateKey", map[string]string{"DKMSInstanceId": tn.InstanceID}, nil)
	if write.Index == 0 || write.Index > tn.FSM().AppliedIndex() {
		t.Fatalf("write index %d, applied %d", write.Index, tn.FSM().AppliedIndex())
	}
	read := tn.must(t, "ListKeys", nil, nil)
	if read.Index != 0 {
		t.Errorf("a read carries %s %d", client.HeaderIndex, read.Index)
	}
	if _, err := tn.V3.Call(ctx, "ListKeys", nil, client.WithMinIndex(write.Index)); err != nil {
		t.Errorf("Min-Index already applied: %v", err)
	}
	before := tn.hash()
	_, err := tn.V3.Call(ctx, "CreateKey", map[string]string{"DKMSInstanceId": tn.InstanceID}, client.WithHeader(client.HeaderMinIndex, "soon"))
	wantAPIError(t, err, 400, "InvalidParameter")
	_, err = tn.V3.Call(ctx, "CreateKey", map[string]string{"DKMSInstanceId": tn.InstanceID}, client.WithHeader(client.HeaderMinIndex, "-"+strconv.Itoa(1)))
	wantAPIError(t, err, 400, "InvalidParameter")
	if _, err := tn.V3.Call(ctx, "ListKeys", nil, client.WithHeader("X-Kms-Read-Consistency", "linearizable")); err != nil {
		t.Errorf("linearizable read: %v", err)
	}
	_, err = tn.V3.Call(ctx, "CreateKey", map[string]string{"DKMSInstanceId": tn.InstanceID}, client.WithHeader("X-Kms-Read-Consistency", "eventual"))
	wantAPIError(t, err, 400, "InvalidParameter")
	if tn.hash() != before {
		t.Error("the catalogue changed")
	}
}
