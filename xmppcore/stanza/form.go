package stanza

// XEP-0004 data forms: building a form and reading a submitted one.

// Form types.
const (
	FormForm   = "form"
	FormSubmit = "submit"
	FormResult = "result"
	FormCancel = "cancel"
)

// NewForm returns a <x xmlns='jabber:x:data'/> of type typ with a hidden
// FORM_TYPE field holding formType (none if formType is ""), followed by
// fields.
func NewForm(typ, formType string, fields ...*Element) *Element {
	x := NewElement(NSData, "x", "type", typ)
	if formType != "" {
		x.AddChild(FormField("hidden", "FORM_TYPE", "", formType))
	}
	return x.AddChild(fields...)
}

// FormField returns a <field/> of type typ (omitted if "") named name,
// with a label (omitted if "") and values.
func FormField(typ, name, label string, values ...string) *Element {
	f := NewElement(NSData, "field", "var", name)
	if typ != "" {
		f.SetAttr("type", typ)
	}
	if label != "" {
		f.SetAttr("label", label)
	}
	for _, v := range values {
		f.AddText(NSData, "value", v)
	}
	return f
}

// FormValues reads a submitted form: var → values, in document order.
func FormValues(x *Element) map[string][]string {
	out := make(map[string][]string)
	if x == nil {
		return out
	}
	for _, f := range x.Children {
		if f.Name.Local != "field" {
			continue
		}
		v := f.AttrValue("var")
		vals := out[v]
		for _, c := range f.Children {
			if c.Name.Local == "value" {
				vals = append(vals, c.Text)
			}
		}
		out[v] = vals
	}
	return out
}

// FormType returns the value of a form's FORM_TYPE field, or "".
func FormType(x *Element) string {
	if x == nil {
		return ""
	}
	for _, f := range x.Children {
		if f.Name.Local == "field" && f.AttrValue("var") == "FORM_TYPE" {
			return f.ChildText("", "value")
		}
	}
	return ""
}
