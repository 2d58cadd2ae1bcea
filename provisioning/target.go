package provisioning

import (
	"context"

	"github.com/babelforce/bridge/babelforce"
	"github.com/babelforce/bridge/directory"
)

// Source is where the desired state comes from: a whole directory, or an error.
// directory.Reader satisfies it.
type Source interface {
	Read(ctx context.Context) (*directory.Snapshot, error)
}

// Target is the part of babelforce the reconciler reads and writes. *babelforce.Client
// satisfies it.
type Target interface {
	ListAgents(ctx context.Context, f babelforce.AgentFilter) ([]babelforce.Agent, error)
	CreateAgent(ctx context.Context, a *babelforce.Agent) (*babelforce.Agent, error)
	UpdateAgent(ctx context.Context, id string, u babelforce.AgentUpdate) (*babelforce.Agent, error)
	DeleteAgent(ctx context.Context, id string) error
	EnableAgent(ctx context.Context, id string) error
	DisableAgent(ctx context.Context, id string) error
	BulkEnableAgents(ctx context.Context, ids []string) ([]babelforce.BulkResult, error)
	BulkDisableAgents(ctx context.Context, ids []string) ([]babelforce.BulkResult, error)

	ListAgentGroups(ctx context.Context) ([]babelforce.AgentGroup, error)
	CreateAgentGroup(ctx context.Context, g *babelforce.AgentGroup) (*babelforce.AgentGroup, error)
	AddAgentToGroup(ctx context.Context, groupID, agentID string) error
	RemoveAgentFromGroup(ctx context.Context, groupID, agentID string) error

	SCIMListUsers(ctx context.Context, filter string) ([]babelforce.SCIMUser, error)
	SCIMCreateUser(ctx context.Context, u *babelforce.SCIMUser) (*babelforce.SCIMUser, error)
	SCIMReplaceUser(ctx context.Context, id string, u *babelforce.SCIMUser) (*babelforce.SCIMUser, error)
	SCIMPatchUser(ctx context.Context, id string, ops []babelforce.SCIMPatchOp) (*babelforce.SCIMUser, error)

	ListExternalIDs(ctx context.Context, agentID string) ([]babelforce.ExternalID, error)
	SetExternalID(ctx context.Context, agentID, integrationID, externalID string) error
	DeleteExternalID(ctx context.Context, agentID, integrationID string) error
}

var _ Target = (*babelforce.Client)(nil)
