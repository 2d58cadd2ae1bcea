package babelforce

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSCAFileAndInsecureSkipVerify(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"items": []any{}})
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base := Config{BaseURL: srv.URL, Token: "t", MaxAttempts: 1}

	c, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListAgentTags(ctx); err == nil || !strings.Contains(err.Error(), "certificate") || IsTransient(err) {
		t.Errorf("untrusted certificate: want a permanent certificate error, got %v", err)
	}
	retrying, err := New(Config{BaseURL: srv.URL, Token: "t", MaxAttempts: 5})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = retrying.ListAgentTags(ctx)
	if n := statCount(retrying, "GET /api/v2/tags/agent", 0); n != 1 {
		t.Errorf("certificate error tried %d times, want 1", n)
	}

	withCA := base
	withCA.CAFile = caFile
	if c, err = New(withCA); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListAgentTags(ctx); err != nil {
		t.Errorf("with ca_file: %v", err)
	}

	insecure := base
	insecure.InsecureSkipVerify = true
	if c, err = New(insecure); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListAgentTags(ctx); err != nil {
		t.Errorf("with insecure_skip_verify: %v", err)
	}

	badCA := base
	badCA.CAFile = filepath.Join(t.TempDir(), "empty.pem")
	_ = os.WriteFile(badCA.CAFile, []byte("not a cert"), 0o600)
	if _, err := New(badCA); err == nil || !strings.Contains(err.Error(), "ca_file: no PEM certificate") {
		t.Errorf("bad ca_file: %v", err)
	}
}
