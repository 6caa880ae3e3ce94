// Package v1alpha1 holds Ferry's API, group ferry.dev, version v1alpha1.
//
// Two kinds make up the API:
//
//   - AppGroup is the user's: one web application, where its code lives, how
//     its pool of worker processes behaves, how restarts are done and on
//     which nodes it runs. Bumping its RevisionAnnotation rolls it.
//   - ProcessPool is the contract between the manager and one node's agent:
//     one per AppGroup per selected node. The manager writes its spec (the
//     rendered template and the target revision); the node's agent writes its
//     status (the per-process table and the conditions).
//
// The types shared by both (AppSpec, ListenSpec, PoolSpec, RestartSpec) carry
// their defaults and validation as kubebuilder markers, so the API server
// applies them to both kinds alike.
//
// The rule (x-kubernetes-validations) of a duration or quantity field
// holds for any value its pattern refuses: the API server runs the rules
// on such a value too, where duration() or quantity() fails, and a CEL
// conversion error would follow the pattern's own. A duration's rule
// spells the pattern again ([.] for \.), and must change with it (a
// duration past Go's, about 2562047h, matches it and still fails
// duration(): its one error names the rule, after the CEL's). A
// quantity's cannot (Quantity's pattern, on a string of no bounded length,
// costs more than a rule may, and controller-gen puts no maxLength on an
// int-or-string), so it asks what Quantity's pattern comes to: a value
// that does not begin with a digit (after a sign, a dot) is refused by the
// pattern; one that does and parses (isQuantity) matches it, and is held
// to the range; one that does and does not parse matches it only in the
// form mantissa, e, exponent (1E0.0, a fractional exponent), which the
// rule refuses with its message. Before any of that, a quantity longer
// than 64 characters, or with an exponent past 999 either way, is refused
// by a rule of its own, and the range rule passes it without parsing it:
// Kubernetes' parser takes time that grows with the square of a negative
// exponent (1e-99999999999999 held an API server's request until its
// timeout) and with the digits. The rules spell digits \\d in raw CEL
// strings, to keep within the cost budget the API server estimates from
// the regular expressions' lengths. TestMalformedDurationsAndQuantities
// holds all of it to one error per field.
//
// +kubebuilder:object:generate=true
// +groupName=ferry.dev
package v1alpha1
