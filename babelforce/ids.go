package babelforce

import (
	"fmt"
	"net/url"
)

// pathID normalises an id for use in a path and rejects an empty one.
func pathID(what, id string) (string, error) {
	n := NormalizeID(id)
	if n == "" {
		return "", fmt.Errorf("babelforce: %s id is empty", what)
	}
	return url.PathEscape(n), nil
}

// normalizeAgent normalises the ids of an agent read from babelforce.
func normalizeAgent(a *Agent) {
	if a == nil {
		return
	}
	a.ID = NormalizeID(a.ID)
	for i := range a.Groups {
		a.Groups[i].ID = NormalizeID(a.Groups[i].ID)
	}
}

func normalizeGroup(g *AgentGroup) {
	if g != nil {
		g.ID = NormalizeID(g.ID)
	}
}

func normalizeUser(u *User) {
	if u == nil {
		return
	}
	u.ID = NormalizeID(u.ID)
	if u.Agent != nil {
		u.Agent.UUID = NormalizeID(u.Agent.UUID)
	}
}

func agentID(a *Agent) string      { return NormalizeID(a.ID) }
func groupID(g *AgentGroup) string { return NormalizeID(g.ID) }
func userID(u *User) string        { return NormalizeID(u.ID) }
