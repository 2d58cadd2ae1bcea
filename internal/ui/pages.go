package ui

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/babelforce/bridge/provisioning"
)

// pageData is what every template gets; each page fills its part.
type pageData struct {
	Title string
	Nav   string
	User  *principal
	// Message is the page's main message (errors, sign-in notes).
	Message string
	Now     time.Time

	// sign-in
	LoginCSRF  string
	TokenLogin bool
	IdP        string

	Status  *Status
	Runs    []runRow
	Run     *runView
	Plan    *planView
	Query   string
	Explain []line
	// Action pages
	Report      *provisioning.Report
	Fingerprint string
}

// line is one line of a plan, report or explanation in text form, with the class that
// colours it.
type line struct {
	Class, Text string
}

// classify gives each line of a text rendering its class by its first sign.
func classify(text string) []line {
	var out []line
	held := false
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		t := strings.TrimSpace(l)
		c := ""
		switch {
		case strings.HasPrefix(t, "Refused by guard"):
			c, held = "refused", true
		case strings.HasPrefix(t, "Plan:"), strings.HasPrefix(t, "No changes"):
			c = "summary"
		case strings.HasPrefix(t, "#"), held && t != "":
			c = "held"
		case strings.HasPrefix(t, "+"):
			c = "add"
		case strings.HasPrefix(t, "~"):
			c = "change"
		case strings.HasPrefix(t, "-"):
			c = "remove"
		case strings.HasPrefix(t, "!"):
			c = "warn"
		case strings.HasSuffix(t, ":") && !strings.HasPrefix(l, " "):
			c = "heading"
		}
		out = append(out, line{Class: c, Text: l})
	}
	return out
}

var funcs = template.FuncMap{
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"dur": func(d time.Duration) string {
		switch {
		case d < time.Second:
			return d.Round(time.Millisecond).String()
		default:
			return d.Round(100 * time.Millisecond).String()
		}
	},
	"change": provisioning.ChangeLine,
	"ago":    Ago,
	"index0": func(rs []runRow) *runRow {
		if len(rs) == 0 {
			return nil
		}
		return &rs[0]
	},
	"kind": func(k provisioning.Kind) string { return strings.ReplaceAll(string(k), "_", " ") },
}

// Ago says how long ago (or in how long) t is from now, roughly: "42s ago", "in 3m".
func Ago(now, t time.Time) string {
	d := now.Sub(t)
	suffix := " ago"
	if d < 0 {
		d, suffix = -d, ""
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if suffix == "" {
		return "in " + s
	}
	return s + suffix
}

// render writes page name with d; status is the HTTP status.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p *principal, d pageData) {
	t := u.pages[name]
	if t == nil {
		http.Error(w, "no such page template: "+name, http.StatusInternalServerError)
		return
	}
	if d.User == nil {
		d.User = p
	}
	d.Now = u.now()
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", d); err != nil {
		u.log.Error("ui: render", "page", name, "error", err)
		http.Error(w, "the page could not be rendered (details in bridge's log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// runRow is one run in the overview's table.
type runRow struct {
	// ID is the run's number in this process; 0 for a run of another process sharing the
	// store (a replica, a one-shot command): this process has only its summary, so the row
	// links nowhere and Origin names where it ran.
	ID       uint64
	Origin   string
	Trigger  string
	Started  time.Time
	Ago      string
	Duration time.Duration
	Mode     string
	Scope    string
	// Summary is the plan in numbers (nil: the run stopped before planning).
	Summary                  *provisioning.Summary
	Applied, Failed, Planned int
	Kinds                    []kindCount
	Errors                   []string
	Refused                  []string
	// CanAct: the viewer may act on the run (an admin).
	CanAct bool
}

// kindCount is how many changes of one kind a run applied, failed, skipped or planned.
type kindCount struct {
	Kind                              provisioning.Kind
	Applied, Failed, Skipped, Planned int
}

func kindCounts(counts map[string]int) []kindCount {
	byKind := map[string]*kindCount{}
	for k, n := range counts {
		kind, status, ok := strings.Cut(k, "/")
		if !ok {
			continue
		}
		kc := byKind[kind]
		if kc == nil {
			kc = &kindCount{Kind: provisioning.Kind(kind)}
			byKind[kind] = kc
		}
		switch status {
		case provisioning.StatusApplied:
			kc.Applied += n
		case provisioning.StatusFailed:
			kc.Failed += n
		case provisioning.StatusSkipped:
			kc.Skipped += n
		case "planned":
			kc.Planned += n
		}
	}
	var out []kindCount
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		out = append(out, *byKind[k])
	}
	return out
}

func (u *UI) runRow(rep *provisioning.Report) runRow {
	row := runRow{ID: rep.ID, Trigger: rep.Trigger, Started: rep.Started, Ago: Ago(u.now(), rep.Started), Duration: rep.Duration,
		Summary: rep.Summary, Applied: rep.Counts[provisioning.StatusApplied], Failed: rep.Counts[provisioning.StatusFailed],
		Planned: rep.Counts["planned"], Kinds: kindCounts(rep.Counts), Refused: rep.Refused, Scope: "everyone"}
	// the guard's refusal is shown as such, not again among the errors
	refusal := (&provisioning.GuardError{Reasons: rep.Refused}).Error()
	for _, e := range rep.Errors {
		if len(rep.Refused) == 0 || e != refusal {
			row.Errors = append(row.Errors, e)
		}
	}
	var mode []string
	if rep.DryRun {
		mode = append(mode, "dry run")
	}
	if rep.Forced {
		mode = append(mode, "forced")
	}
	row.Mode = strings.Join(mode, ", ")
	switch {
	case len(rep.Users) > 0:
		row.Scope = strings.Join(rep.Users, ", ")
	case len(rep.Tasks) > 0:
		row.Scope = "the " + strings.Join(rep.Tasks, ", ") + " settings"
	}
	if rep.ID == 0 {
		row.Origin = cmp.Or(rep.Origin, "another process")
	}
	return row
}

func (u *UI) handleOverview(w http.ResponseWriter, r *http.Request) {
	st := u.backend.Status(r.Context())
	d := pageData{Title: "Overview", Nav: "overview", Status: &st}
	for i := range st.Runs {
		row := u.runRow(&st.Runs[i])
		row.CanAct = principalOf(r).Admin
		d.Runs = append(d.Runs, row)
	}
	u.render(w, r, http.StatusOK, "overview", principalOf(r), d)
}

// runView is one run with its changes filtered.
type runView struct {
	runRow
	// Full: every change is listed; else only the failures are still kept.
	Full bool
	// Kinds offered by the filter, the filter's values, the results that pass it and how
	// many there are in all.
	FilterKinds  []provisioning.Kind
	Kind, Person string
	Results      []provisioning.Result
	Total        int
	Held         []provisioning.Change
	Skipped      []provisioning.Skipped
	Warnings     []provisioning.Skipped
}

// Row is the run's counts, for the runcounts template.
func (v *runView) Row() runRow { return v.runRow }

func (u *UI) handleRun(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	var rep *provisioning.Report
	full, ok := false, false
	if err == nil {
		rep, full, ok = u.backend.Report(id)
	}
	if !ok {
		u.render(w, r, http.StatusNotFound, "error", p, pageData{Title: "No such run",
			Message: "bridge keeps the last runs of this process only; this one is not among them."})
		return
	}
	v := &runView{runRow: u.runRow(rep), Full: full, Kind: r.URL.Query().Get("kind"), Person: strings.TrimSpace(r.URL.Query().Get("person"))}
	kinds := map[provisioning.Kind]bool{}
	results := rep.Results
	if rep.DryRun && rep.Plan != nil {
		for _, c := range rep.Plan.Changes {
			results = append(results, provisioning.Result{Change: c, Status: "planned"})
		}
	}
	match := func(c provisioning.Change) bool {
		if v.Kind != "" && string(c.Kind) != v.Kind {
			return false
		}
		if v.Person == "" {
			return true
		}
		q := strings.ToLower(v.Person)
		return strings.Contains(strings.ToLower(c.Subject), q) || strings.Contains(strings.ToLower(c.SourceID), q) ||
			strings.ToLower(c.AgentID) == q
	}
	v.Total = len(results)
	for _, res := range results {
		kinds[res.Change.Kind] = true
		if match(res.Change) {
			v.Results = append(v.Results, res)
		}
	}
	if rep.Plan != nil {
		for _, c := range rep.Plan.Held {
			kinds[c.Kind] = true
			if match(c) {
				v.Held = append(v.Held, c)
			}
		}
		v.Skipped, v.Warnings = rep.Plan.Skipped, rep.Plan.Warnings
	}
	v.FilterKinds = slices.Sorted(maps.Keys(kinds))
	v.CanAct = p.Admin
	u.render(w, r, http.StatusOK, "run", p, pageData{Title: fmt.Sprintf("Run %d", rep.ID), Nav: "overview", Run: v})
}

// planView is a plan in text form.
type planView struct {
	Lines   []line
	Refused bool
	Summary provisioning.Summary
}

func newPlanView(p *provisioning.Plan) (*planView, error) {
	var b strings.Builder
	if err := p.WriteText(&b); err != nil {
		return nil, err
	}
	return &planView{Lines: classify(b.String()), Refused: len(p.Refused) > 0, Summary: p.Summary()}, nil
}

func (u *UI) handlePlan(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	d := pageData{Title: "Pending plan", Nav: "plan"}
	if r.URL.Query().Get("compute") == "" {
		u.render(w, r, http.StatusOK, "plan", p, d)
		return
	}
	plan, err := u.backend.Plan(r.Context())
	if err == nil {
		d.Plan, err = newPlanView(plan)
	}
	if err != nil {
		d.Message = "The dry run failed: " + err.Error()
		u.render(w, r, http.StatusBadGateway, "plan", p, d)
		return
	}
	u.render(w, r, http.StatusOK, "plan", p, d)
}

func (u *UI) handleExplain(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	d := pageData{Title: "Explain", Nav: "explain", Query: strings.TrimSpace(r.URL.Query().Get("q"))}
	if d.Query == "" {
		u.render(w, r, http.StatusOK, "explain", p, d)
		return
	}
	ex, err := u.backend.Explain(r.Context(), d.Query)
	status := http.StatusOK
	switch {
	case errors.Is(err, provisioning.ErrUnknownUser):
		status, d.Message = http.StatusNotFound, "Nobody found: no directory user has this id, user name or e-mail, and no agent of bridge has this sourceId or e-mail."
	case err != nil:
		status, d.Message = http.StatusBadGateway, "bridge could not explain this person: "+err.Error()
	default:
		var b strings.Builder
		if err := ex.WriteText(&b); err != nil {
			status, d.Message = http.StatusInternalServerError, err.Error()
		}
		d.Explain = classify(b.String())
	}
	u.render(w, r, status, "explain", p, d)
}

func (u *UI) handleRunConfirm(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, http.StatusOK, "confirm_run", principalOf(r), pageData{Title: "Run now", Nav: "actions"})
}

func (u *UI) handleRunDo(w http.ResponseWriter, r *http.Request) {
	rep, err := u.backend.Run(r.Context(), false)
	u.afterAction(w, r, "run", rep, err)
}

func (u *UI) handleProvisionConfirm(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	d := pageData{Title: "Provision one person", Nav: "actions", Query: strings.TrimSpace(r.URL.Query().Get("user"))}
	if d.Query != "" {
		ex, err := u.backend.Explain(r.Context(), d.Query)
		switch {
		case errors.Is(err, provisioning.ErrUnknownUser):
			d.Message = "Nobody found with this id, user name or e-mail."
		case err != nil:
			d.Message = "bridge could not look this person up: " + err.Error()
		default:
			var b strings.Builder
			_ = ex.WriteText(&b)
			d.Explain = classify(b.String())
		}
	}
	u.render(w, r, http.StatusOK, "confirm_provision", p, d)
}

func (u *UI) handleProvisionDo(w http.ResponseWriter, r *http.Request) {
	user := strings.TrimSpace(r.PostForm.Get("user"))
	if user == "" {
		u.render(w, r, http.StatusBadRequest, "error", principalOf(r), pageData{Title: "Provision", Message: "Name the person: user name, e-mail or id."})
		return
	}
	rep, err := u.backend.Provision(r.Context(), user)
	u.afterAction(w, r, "provision "+user, rep, err)
}

// heldFingerprint identifies the changes a guard holds back, so that a force applies only
// what the admin saw.
func heldFingerprint(p *provisioning.Plan) string {
	h := sha256.New()
	for _, reason := range p.Refused {
		fmt.Fprintln(h, reason)
	}
	for _, c := range p.Held {
		fmt.Fprintln(h, provisioning.ChangeLine(c))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (u *UI) handleForceConfirm(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	d := pageData{Title: "Apply a refused run", Nav: "actions"}
	plan, err := u.backend.Plan(r.Context())
	if err == nil {
		d.Plan, err = newPlanView(plan)
	}
	if err != nil {
		d.Message = "The dry run failed, nothing can be forced now: " + err.Error()
		u.render(w, r, http.StatusBadGateway, "confirm_force", p, d)
		return
	}
	d.Fingerprint = heldFingerprint(plan)
	d.Run = &runView{Held: plan.Held, runRow: runRow{Refused: plan.Refused}}
	u.render(w, r, http.StatusOK, "confirm_force", p, d)
}

func (u *UI) handleForceDo(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	// What the guard holds back now must be what the admin confirmed.
	plan, err := u.backend.Plan(r.Context())
	if err != nil {
		u.render(w, r, http.StatusBadGateway, "error", p, pageData{Title: "Not forced", Message: "The dry run failed, nothing was forced: " + err.Error()})
		return
	}
	if len(plan.Refused) == 0 {
		u.render(w, r, http.StatusConflict, "error", p, pageData{Title: "Not forced", Message: "The guard refuses nothing now; nothing was forced. Run now applies the plan."})
		return
	}
	if !sameToken(r.PostForm.Get("fingerprint"), heldFingerprint(plan)) {
		u.render(w, r, http.StatusConflict, "error", p, pageData{Title: "Not forced",
			Message: "What the guard holds back changed since you looked; nothing was forced. Review it again."})
		return
	}
	u.log.Warn("ui: forcing a run the guard refused", "user", p.Name, "held", len(plan.Held), "refused", strings.Join(plan.Refused, "; "))
	rep, err := u.backend.Run(r.Context(), true)
	u.afterAction(w, r, "forced run", rep, err)
}

// afterAction shows the run an action started (redirect to its page) or why there is none.
func (u *UI) afterAction(w http.ResponseWriter, r *http.Request, what string, rep *provisioning.Report, err error) {
	p := principalOf(r)
	u.log.Info("ui: action", "action", what, "user", p.Name, "error", err)
	if rep != nil && rep.ID != 0 {
		q := url.Values{"done": {what}}
		if err != nil {
			q.Set("error", "1")
		}
		http.Redirect(w, r, fmt.Sprintf("/ui/runs/%d?%s", rep.ID, q.Encode()), http.StatusSeeOther)
		return
	}
	msg := "The " + what + " did not start"
	if err != nil {
		msg += ": " + err.Error()
	}
	status := http.StatusBadGateway
	if errors.Is(err, provisioning.ErrUnknownUser) {
		status = http.StatusNotFound
	}
	if errors.Is(err, provisioning.ErrBusy) {
		status = http.StatusServiceUnavailable
	}
	u.render(w, r, status, "error", p, pageData{Title: "Not started", Message: msg})
}
