package provisioning

import (
	"errors"
	"fmt"
	"strings"
)

// Phases of a run's errors (RunError.Phase).
const (
	// PhaseRead: something the run needed could not be read (the directory, babelforce, the
	// state, the IdP or babelforce setting a side task compares): nothing was written on its
	// account, and a run that could not read the directory or babelforce wrote nothing at all.
	PhaseRead = "read"
	// PhaseApply: a write failed (a change, saving the state) or the run stopped writing
	// (cancelled, run lock lost).
	PhaseApply = "apply"
)

// ErrRead is wrapped by the errors of a run that could not read what it needed (see
// PhaseRead): errors.Is(err, ErrRead) tells them from failed writes.
var ErrRead = errors.New("read failed")

// readError marks err as a read failure; its message is err's.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrRead) true (a single Unwrap: unjoin splits only joined errors).
func (e *readError) Is(target error) bool { return target == ErrRead }

// asRead marks err (nil stays nil) as a read failure.
func asRead(err error) error {
	if err == nil || errors.Is(err, ErrRead) {
		return err
	}
	return &readError{err: err}
}

// RunError is one error of a run, typed: what could not be read, or which change failed.
type RunError struct {
	// Phase is PhaseRead or PhaseApply.
	Phase string `json:"phase"`
	// Kind and Subject name the change that failed (apply errors of a change only).
	Kind    Kind   `json:"kind,omitempty"`
	Subject string `json:"subject,omitempty"`
	Message string `json:"message"`
}

// changeError is the error of one failed change, as the run's error joins it.
type changeError struct {
	kind    Kind
	subject string
	err     error
}

func (e *changeError) Error() string {
	return fmt.Sprintf("%s %s: %v", strings.ReplaceAll(string(e.kind), "_", " "), e.subject, e.err)
}

func (e *changeError) Unwrap() error { return e.err }

// moreFailures stands for the failed changes a run's error does not name one by one.
type moreFailures int

func (n moreFailures) Error() string {
	return fmt.Sprintf("and %d more failed changes (see the report)", int(n))
}

// classify fills rep.ReadErrors and rep.ApplyFailures from the run's error and results: every
// failed change with its kind and subject, then the other errors by phase (a guard's refusal is
// rep.Refused, not an error of either phase).
func classify(rep *Report, err error) {
	for _, res := range rep.Results {
		if res.Status == StatusFailed {
			rep.ApplyFailures = append(rep.ApplyFailures, RunError{Phase: PhaseApply, Kind: res.Change.Kind,
				Subject: res.Change.Subject, Message: res.Error})
		}
	}
	if err == nil {
		return
	}
	for _, e := range unjoin(err) {
		var ce *changeError
		var more moreFailures
		switch {
		case errors.As(e, &ce), errors.As(e, &more), errors.Is(e, ErrGuardRefused):
		case errors.Is(e, ErrRead):
			rep.ReadErrors = append(rep.ReadErrors, RunError{Phase: PhaseRead, Message: e.Error()})
		default:
			rep.ApplyFailures = append(rep.ApplyFailures, RunError{Phase: PhaseApply, Message: e.Error()})
		}
	}
}
