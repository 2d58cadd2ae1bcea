package babelforce

// SCIM types for babelforce's SCIM API under /auth/scim/v2. babelforce publishes no spec for
// it; these follow RFC 7643 as the shared README assumes (roles[].value carries babelforce
// roles, phoneNumbers[type=work] the agent number).

// SCIM schema URNs.
const (
	SCIMUserSchema       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SCIMListSchema       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SCIMPatchOpSchema    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SCIMErrorSchema      = "urn:ietf:params:scim:api:messages:2.0:Error"
	SCIMEnterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

// SCIMUser is a login user as babelforce's SCIM API holds it. UserName is the e-mail,
// lower-cased.
type SCIMUser struct {
	Schemas      []string    `json:"schemas,omitempty"`
	ID           string      `json:"id,omitempty"`
	ExternalID   string      `json:"externalId,omitempty"`
	UserName     string      `json:"userName"`
	Name         *SCIMName   `json:"name,omitempty"`
	DisplayName  string      `json:"displayName,omitempty"`
	Emails       []SCIMValue `json:"emails,omitempty"`
	PhoneNumbers []SCIMValue `json:"phoneNumbers,omitempty"`
	Roles        []SCIMValue `json:"roles,omitempty"`
	Active       *bool       `json:"active,omitempty"`
	Meta         *SCIMMeta   `json:"meta,omitempty"`
}

// IsActive reports whether the user is active (SCIM's default is active).
func (u *SCIMUser) IsActive() bool { return u.Active == nil || *u.Active }

// SCIMName is the SCIM complex name attribute.
type SCIMName struct {
	Formatted  string `json:"formatted,omitempty"`
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
}

// SCIMValue is a multi-valued attribute entry (emails, phoneNumbers, roles).
type SCIMValue struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
	Display string `json:"display,omitempty"`
}

// SCIMMeta is the SCIM meta attribute.
type SCIMMeta struct {
	ResourceType string `json:"resourceType,omitempty"`
	Created      string `json:"created,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	Location     string `json:"location,omitempty"`
	Version      string `json:"version,omitempty"`
}

// SCIMPatchOp is one operation of a SCIM PATCH request.
type SCIMPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

// SCIMConfiguration is babelforce's SCIM configuration (GET|PUT /auth/scim/v2/configuration).
type SCIMConfiguration struct {
	DefaultRoles []string     `json:"defaultRoles"`
	Customizer   string       `json:"customizer,omitempty"`
	Features     SCIMFeatures `json:"features"`
}

// SCIMFeatures are the feature flags of babelforce's SCIM configuration.
type SCIMFeatures struct {
	SCIM            bool `json:"scim"`
	Groups          bool `json:"groups"`
	Roles           bool `json:"roles"`
	PasswordSync    bool `json:"password_sync"`
	PhoneNumberSync bool `json:"phone_number_sync"`
}
