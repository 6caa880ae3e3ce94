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
// holds for any value its form refuses: the API server runs the rules on
// such a value too, where duration() or quantity() fails, and a CEL
// conversion error would follow the form's own. The form is a rule of its
// own too, whose message says what a duration or a quantity is: a
// pattern's error shows only its regular expression, which told a user
// who wrote "5min" or "1 GB" nothing. A duration's range rule spells the
// form again ([.] for \.), and must change with it (a duration past Go's,
// about 2562047h, has the form and still fails duration(): its one error
// names the rule, after the CEL's). The form takes each unit
// time.ParseDuration reads, which metav1.Duration decodes a field with,
// as CEL's duration() does: ns, us, µs (U+00B5, the micro sign), μs
// (U+03BC, the Greek mu), ms, s, m and h; its message names µs once, the
// two looking the same. Each rule spells the pattern (a marker is a
// literal), and TestDurationRulesTakeGoUnits holds them to one, which
// takes Go's units and no other. A quantity field is Schemaless, an
// int-or-string of at most 1024 characters: controller-gen would give it
// Quantity's pattern, and with no bound on its length its rules would
// cost most of the API server's budget for the CRD (past the bound the
// API server runs no rule and says only that the value is too long). Its
// form rule spells Kubernetes' quantity pattern and asks that a value of
// that form parse (isQuantity): one that does not has the form mantissa,
// e, exponent (1E0.0, a fractional exponent), and is no quantity. Its
// range rule passes a value that does not begin with a digit (after a
// sign, a dot), which the form refuses ("-", "Mi" and ".Ki" parse, as 0),
// and one that does not parse. Before any parsing, a quantity longer than
// 64 characters, or with an exponent past 999 either way, is refused by a
// rule of its own, and the other two pass it without parsing it:
// Kubernetes' parser takes time that grows with the square of a negative
// exponent (1e-99999999999999 held an API server's request until its
// timeout) and with the digits. The rules spell digits \\d in raw CEL
// strings, to keep within the cost budget the API server estimates from
// the regular expressions' lengths. TestMalformedDurationsAndQuantities
// holds all of it to one error per field.
//
// A user, an env name and a nodeSelector value have the form of a rule
// with a message too, rather than a pattern, for the same reason; the
// rule spells the pattern it replaced, so the values accepted are the
// same (TestMalformedNamesSayWhatTheyMust).
//
// +kubebuilder:object:generate=true
// +groupName=ferry.dev
package v1alpha1
