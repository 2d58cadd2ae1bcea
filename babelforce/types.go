package babelforce

import "strings"

// Wire types of the babelforce APIs bridge uses. Field names follow babelforce's published
// Manager API spec (see testdata/babelforce/openapi.yaml for the trimmed copy the tests use).

// Agent is a babelforce agent: the telephony identity of a person.
type Agent struct {
	ID          string     `json:"id,omitempty"`
	Name        string     `json:"name"`
	Email       string     `json:"email,omitempty"`
	Number      string     `json:"number,omitempty"`
	Enabled     *bool      `json:"enabled,omitempty"`
	Tags        []string   `json:"tags,omitempty"`
	Groups      []GroupRef `json:"groups,omitempty"`
	SourceID    string     `json:"sourceId,omitempty"`
	AgentSource string     `json:"agentSource,omitempty"`
	DateCreated string     `json:"dateCreated,omitempty"`
	LastUpdated string     `json:"lastUpdated,omitempty"`
}

// IsEnabled reports whether the agent is enabled (babelforce's default is enabled).
func (a *Agent) IsEnabled() bool { return a.Enabled == nil || *a.Enabled }

// GroupRef is an agent group as embedded in an agent.
type GroupRef struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	DateCreated string `json:"dateCreated,omitempty"`
}

// AgentGroup is a named group of agents.
type AgentGroup struct {
	ID   string   `json:"id,omitempty"`
	Name string   `json:"name"`
	Tags []string `json:"tags,omitempty"`
}

// User is a babelforce login user (Manager API /api/v2/users).
type User struct {
	ID        string     `json:"id,omitempty"`
	Email     string     `json:"email,omitempty"`
	Username  string     `json:"username,omitempty"`
	Roles     []string   `json:"roles,omitempty"`
	Activated *bool      `json:"activated,omitempty"`
	Enabled   *bool      `json:"enabled,omitempty"`
	Agent     *UserAgent `json:"agent,omitempty"`
}

// UserAgent links a login user to its agent.
type UserAgent struct {
	UUID     string `json:"uuid,omitempty"`
	Type     string `json:"type,omitempty"`
	SourceID string `json:"sourceId,omitempty"`
}

// Roles babelforce knows for login users.
var Roles = []string{"manager", "owner", "reporter", "user", "agent", "supervisor", "sales", "router", "scheduler"}

// NormalizeID returns id as babelforce puts it on the wire: lower-case hex without hyphens.
func NormalizeID(id string) string {
	return strings.ToLower(strings.ReplaceAll(id, "-", ""))
}
