package attrs

import "gohsm/internal/ck"

// The map-level forms of building, which the package's tests use: each is
// the Attrs-level function the token calls, on a Template.

// Build is BuildAttrs under the tables' rules, as a Template.
func Build(op Op, class ck.ObjectClass, keyType ck.KeyType, mech ck.MechanismType, t Template) (Template, error) {
	return BuildWith(nil, op, class, keyType, mech, t)
}

// BuildWith is BuildAttrs as a Template.
func BuildWith(p *Policy, op Op, class ck.ObjectClass, keyType ck.KeyType, mech ck.MechanismType, t Template) (Template, error) {
	x, err := BuildAttrs(p, op, class, keyType, mech, t)
	if err != nil {
		return nil, err
	}
	return x.Template(), nil
}

// WithMaterial is AddMaterialTo on a copy of obj.
func WithMaterial(obj, material Template) (Template, error) {
	return AddMaterial(obj.Clone(), material)
}

// AddMaterial is AddMaterialTo on obj, whose values the result shares.
func AddMaterial(obj, material Template) (Template, error) {
	x := FromTemplate(obj)
	if err := AddMaterialTo(&x, material); err != nil {
		return nil, err
	}
	return x.Template(), nil
}

// ApplyDeriveBase is SetDeriveBaseOf on a copy of derived.
func ApplyDeriveBase(derived Template, keys ...Reader) Template {
	return SetDeriveBase(derived.Clone(), keys...)
}

// SetDeriveBase is SetDeriveBaseOf on out, whose values the result
// shares.
func SetDeriveBase(out Template, keys ...Reader) Template {
	x := FromTemplate(out)
	SetDeriveBaseOf(&x, keys...)
	return x.Template()
}

// prototypeOf is s's prototype's map under p (never written).
func (s *Schema) prototypeOf(p *Policy) Template { return s.prototypeFor(p).t }
