package spectest_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/babelforce/bridge/babelforce/babelforcetest"
	"github.com/babelforce/bridge/babelforce/babelforcetest/spectest"
)

func TestSpecPathFromModuleRoot(t *testing.T) {
	p, err := spectest.SpecPath()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(filepath.ToSlash(p), "testdata/babelforce/openapi.yaml") {
		t.Errorf("SpecPath() = %s", p)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(p), "..", "..", "go.mod")); err != nil {
		t.Errorf("%s is not under the module root: %v", p, err)
	}
	doc := spectest.LoadT(t)
	if doc.Paths.Find("/api/v2/agents") == nil {
		t.Error("spec has no /api/v2/agents")
	}
}

// fatalTB records the first Fatal and ends the goroutine the way testing.T does.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = format
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fatalTB) Fatal(args ...any) { f.Fatalf("fatal"); _ = args }

// failed runs fn with a fatalTB and reports the Fatalf format it stopped with ("" if none).
func failed(t *testing.T, fn func(tb testing.TB)) string {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); fn(tb) }()
	<-done
	return tb.msg
}

func TestValidatorAcceptsSimulatorAndCatchesMismatches(t *testing.T) {
	sim := babelforcetest.New(t, babelforcetest.Options{})
	v := spectest.New(t, sim.URL)
	res := v.Do(t, spectest.Request{Method: http.MethodPost, Path: "/oauth/token", ContentType: "application/x-www-form-urlencoded",
		Body: []byte("grant_type=password&client_id=manager&username=" + sim.Username + "&password=" + sim.Password)})
	if res.Status != http.StatusOK {
		t.Fatalf("token: %d %s", res.Status, res.Body)
	}

	if msg := failed(t, func(tb testing.TB) { v.Do(tb, spectest.Request{Method: http.MethodGet, Path: "/nowhere"}) }); !strings.Contains(msg, "not in the trimmed spec") {
		t.Errorf("unknown route: failure %q", msg)
	}
	if msg := failed(t, func(tb testing.TB) {
		v.Do(tb, spectest.Request{Method: http.MethodGet, Path: "/nowhere", NoRoute: true})
	}); msg != "" {
		t.Errorf("NoRoute request failed: %q", msg)
	}
	bad := spectest.Request{Method: http.MethodPost, Path: "/api/v2/agents", Body: []byte(`{"name": 5}`)}
	if msg := failed(t, func(tb testing.TB) { v.Do(tb, bad) }); !strings.Contains(msg, "request does not match") {
		t.Errorf("invalid request: failure %q", msg)
	}
	bad.InvalidRequest = true
	if msg := failed(t, func(tb testing.TB) { v.Do(tb, bad) }); strings.Contains(msg, "request does not match") {
		t.Errorf("InvalidRequest still checked the request: %q", msg)
	}

	// a server answering the wrong shape
	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items": "not a list"}`))
	}))
	defer wrong.Close()
	wv := spectest.New(t, wrong.URL)
	if msg := failed(t, func(tb testing.TB) {
		wv.Do(tb, spectest.Request{Method: http.MethodGet, Path: "/api/v2/agents", Token: "x"})
	}); !strings.Contains(msg, "response %d does not match") {
		t.Errorf("wrong response: failure %q", msg)
	}
}
