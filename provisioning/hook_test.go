package provisioning

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/babelforce/bridge/babelforce"
)

// hookTarget wraps a Target: it can fail creates and measures how many writes are in flight.
// With gate > 0 the first creates wait until gate of them are in flight at once (or 5s
// passed), so that a concurrency bound is reached deterministically.
type hookTarget struct {
	Target
	beforeCreate func(a *babelforce.Agent) error
	gate         int32

	inflight, max atomic.Int32
	once          sync.Once
	open          chan struct{}
	mu            sync.Mutex
}

func (h *hookTarget) enter() func() {
	n := h.inflight.Add(1)
	for {
		m := h.max.Load()
		if n <= m || h.max.CompareAndSwap(m, n) {
			break
		}
	}
	if h.gate > 0 {
		h.mu.Lock()
		if h.open == nil {
			h.open = make(chan struct{})
		}
		ch := h.open
		h.mu.Unlock()
		if n >= h.gate {
			h.once.Do(func() { close(ch) })
		}
		select {
		case <-ch:
		case <-time.After(5 * time.Second): // the bound is lower than gate: the test fails on max
		}
	}
	return func() { h.inflight.Add(-1) }
}

func (h *hookTarget) CreateAgent(ctx context.Context, a *babelforce.Agent) (*babelforce.Agent, error) {
	defer h.enter()()
	if h.beforeCreate != nil {
		if err := h.beforeCreate(a); err != nil {
			return nil, err
		}
	}
	return h.Target.CreateAgent(ctx, a)
}

func (h *hookTarget) SCIMCreateUser(ctx context.Context, u *babelforce.SCIMUser) (*babelforce.SCIMUser, error) {
	defer h.enter()()
	return h.Target.SCIMCreateUser(ctx, u)
}

func (h *hookTarget) AddAgentToGroup(ctx context.Context, groupID, agentID string) error {
	defer h.enter()()
	return h.Target.AddAgentToGroup(ctx, groupID, agentID)
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
