// Package mapping turns a directory snapshot into the state babelforce should hold: which users
// become agents, with which name, e-mail, number, skills (agent tags), agent groups, login roles
// and external ids. It is pure: no I/O, no clock, no logging, no context. Rules come from
// config (see Config); Desire applies them.
//
// Config is the `mapping:` section of bridge's configuration; its doc comment has a complete
// YAML example and says what every key does. Compile (or Config.Validate) reports every
// mistake at once with its YAML key path. Desire maps a whole snapshot; Explain says, for
// `bridge explain USER`, how one user is mapped and why; FindUser resolves the USER argument.
//
// A minimal configuration:
//
//	mapping:
//	  agent_source: "bridge:ldap"
//	  scope:
//	    include_groups: [babelforce-agents]
//	  phone:
//	    default_region: DE
//	  skills:
//	    - {match: "^skill-(.+)$", tag: "$1", lowercase: true}
//	  agent_groups:
//	    - {match: "^team-(.+)$", agent_group: "$1"}
//	  roles:
//	    - {group: cc-supervisors, roles: [supervisor]}
//	  default_roles: [agent]
package mapping
