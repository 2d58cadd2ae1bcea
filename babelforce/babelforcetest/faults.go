package babelforcetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// Faults make the simulator misbehave on purpose. Rates are probabilities in [0,1] drawn
// once per request, in this order: DropRate, Rate429, Rate5xx, CutRate, LostRate. The first
// three fail before the request is applied; CutRate and LostRate fail after it was applied,
// so a client cannot tell whether its write landed.
type Faults struct {
	// Rate429 answers 429 Too Many Requests with Retry-After.
	Rate429 float64 `json:"rate429"`
	// Rate5xx answers 500, 502, 503 or 504 (equal shares) without applying the request.
	Rate5xx float64 `json:"rate5xx"`
	// RetryAfter is sent (in whole seconds, rounded up) with 429 and 503 answers.
	RetryAfter time.Duration `json:"retryAfter"`
	// Latency delays every request on a faulted path.
	Latency time.Duration `json:"latency"`
	// DropRate closes the connection without an answer, without applying the request.
	DropRate float64 `json:"dropRate"`
	// CutRate applies the request, sends the status line and headers of its answer and
	// closes the connection half-way through the body.
	CutRate float64 `json:"cutRate"`
	// LostRate applies the request and then loses its answer: 500, 502, 504 or a closed
	// connection instead (equal shares), as a proxy timing out or a crash after the commit.
	LostRate float64 `json:"lostRate"`
	// Paths limits faults to requests whose path starts with one of these prefixes;
	// empty means every path except /_simulator/.
	Paths []string `json:"paths,omitempty"`
}

// Mix spreads rate (0-1) over every kind of fault: 30% of it 429s (with a Retry-After of
// retryAfter), 30% 500/502/503/504 before applying, 10% dropped connections, 10% answers cut
// after the headers, 20% answers lost after applying. It is what `bridge simulate
// --fault-rate` and the chaos tests use.
func Mix(rate float64, retryAfter time.Duration) Faults {
	return Faults{Rate429: 0.3 * rate, Rate5xx: 0.3 * rate, DropRate: 0.1 * rate,
		CutRate: 0.1 * rate, LostRate: 0.2 * rate, RetryAfter: retryAfter}
}

// UnmarshalJSON accepts durations as Go duration strings ("1s", "250ms") or nanoseconds.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var raw struct {
		Rate429    float64         `json:"rate429"`
		Rate5xx    float64         `json:"rate5xx"`
		RetryAfter json.RawMessage `json:"retryAfter"`
		Latency    json.RawMessage `json:"latency"`
		DropRate   float64         `json:"dropRate"`
		CutRate    float64         `json:"cutRate"`
		LostRate   float64         `json:"lostRate"`
		Paths      []string        `json:"paths"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	ra, err := parseJSONDuration(raw.RetryAfter)
	if err != nil {
		return fmt.Errorf("retryAfter: %w", err)
	}
	lat, err := parseJSONDuration(raw.Latency)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	*f = Faults{Rate429: raw.Rate429, Rate5xx: raw.Rate5xx, RetryAfter: ra, Latency: lat, DropRate: raw.DropRate,
		CutRate: raw.CutRate, LostRate: raw.LostRate, Paths: raw.Paths}
	return nil
}

func parseJSONDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("want a duration such as \"1s\": %w", err)
		}
		return d, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, errors.New("want a duration string such as \"1s\" or nanoseconds")
	}
	return time.Duration(n), nil
}

func (f Faults) total() float64 { return f.DropRate + f.Rate429 + f.Rate5xx + f.CutRate + f.LostRate }

// validate reports bad fault settings.
func (f Faults) validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		v    float64
	}{{"rate429", f.Rate429}, {"rate5xx", f.Rate5xx}, {"dropRate", f.DropRate}, {"cutRate", f.CutRate}, {"lostRate", f.LostRate}} {
		if r.v < 0 || r.v > 1 {
			errs = append(errs, fmt.Errorf("%s %v is not in [0,1]", r.name, r.v))
		}
	}
	if t := f.total(); t > 1+1e-9 {
		errs = append(errs, fmt.Errorf("rate429+rate5xx+dropRate+cutRate+lostRate = %v exceeds 1", t))
	}
	if f.RetryAfter < 0 || f.Latency < 0 {
		errs = append(errs, errors.New("retryAfter and latency must not be negative"))
	}
	return errors.Join(errs...)
}

// oneShot is one fault for one request.
type oneShot struct {
	status     int // 0: close the connection without an answer
	retryAfter time.Duration
	// after: apply the request first, then fail (status, or 0 to close the connection);
	// cut: apply it and close the connection half-way through the answer's body.
	after, cut bool
}

func (o oneShot) afterApply() bool { return o.after || o.cut }

// drawLocked draws the random fault of one request, nil for none. s.mu is held.
func (s *Server) drawLocked() *oneShot {
	f := s.faults
	if f.total() <= 0 {
		return nil
	}
	x := s.rng.Float64()
	switch {
	case x < f.DropRate:
		return &oneShot{status: 0}
	case x < f.DropRate+f.Rate429:
		return &oneShot{status: http.StatusTooManyRequests, retryAfter: f.RetryAfter}
	case x < f.DropRate+f.Rate429+f.Rate5xx:
		st := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}[s.rng.Intn(4)]
		return &oneShot{status: st, retryAfter: f.RetryAfter}
	case x < f.DropRate+f.Rate429+f.Rate5xx+f.CutRate:
		return &oneShot{cut: true}
	case x < f.total():
		st := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout, 0}[s.rng.Intn(4)]
		return &oneShot{status: st, after: true}
	}
	return nil
}

func (s *Server) faultedLocked(path string) bool {
	if len(s.faults.Paths) == 0 {
		return true
	}
	for _, p := range s.faults.Paths {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// injectFault answers r with the fault f instead of applying it.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request, fam family, f oneShot) {
	if f.status == 0 {
		dropConnection(w)
		return
	}
	if f.retryAfter > 0 || f.status == http.StatusTooManyRequests {
		secs := int64((f.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
	}
	code := "internal_error"
	msg := "simulated server error"
	switch {
	case f.status == http.StatusTooManyRequests:
		code, msg = "rate_limited", "too many requests (simulated)"
	case f.status == http.StatusServiceUnavailable:
		code, msg = "unavailable", "service unavailable (simulated)"
	case f.status == http.StatusBadGateway:
		code, msg = "bad_gateway", "bad gateway (simulated)"
	case f.status == http.StatusGatewayTimeout:
		code, msg = "gateway_timeout", "gateway timeout (simulated)"
	case f.status < 500:
		code, msg = "simulated", "simulated failure"
	}
	s.writeError(w, r, f.status, code, msg)
}

// applyThenFail applies the request (handle writes its answer to a recorder) and then, in
// place of that answer, cuts it after the headers or fails as f says.
func (s *Server) applyThenFail(w http.ResponseWriter, r *http.Request, fam family, f oneShot, handle func(http.ResponseWriter)) {
	rec := httptest.NewRecorder()
	handle(rec)
	if !f.cut {
		s.injectFault(w, r, fam, oneShot{status: f.status})
		return
	}
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body[:len(body)/2])
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	dropConnection(w)
}

// dropConnection closes the connection of w without (another byte of) an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, buf, err := hj.Hijack(); err == nil {
			if buf != nil && buf.Writer.Buffered() > 0 {
				_ = buf.Flush()
			}
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
