// Package appfile loads AppGroups from a file for the standalone agent
// (`ferry-agent standalone -f FILE`), accepting and rejecting exactly what
// the API server would.
//
// A file holds one or more AppGroups: YAML documents separated by `---`
// lines, or JSON (a JSON object is a YAML document too). Empty documents are
// skipped. Every document goes through the steps the API server's
// custom-resource handler takes on create, using its own libraries from
// k8s.io/apiextensions-apiserver and the generated CRD embedded by
// github.com/ferry-dev/ferry/config/crd, so the schema is never a copy:
//
//  1. Decode strictly: a YAML syntax error or a duplicate key is an error
//     naming the document and its line in the file.
//  2. Check apiVersion ferry.dev/v1alpha1 and kind AppGroup.
//  3. Prune fields the schema does not know, reporting each one as
//     `unknown field "spec.pool.maxProcess"`, like the server's strict field
//     validation (kubectl apply --validate=strict, the default). Drop status,
//     which a create may not set.
//  4. Resolve a relative spec.app.root (see below).
//  5. Apply the schema's defaults.
//  6. Validate metadata (metadata.name a DNS-1123 subdomain, labels,
//     annotations), the OpenAPI v3 schema, list-map keys, and then the CEL
//     x-kubernetes-validations rules within the server's own cost budget.
//     As on the server, CEL rules are skipped when the object has a missing
//     required field or a value of the wrong type or outside an enum, and a
//     line says so.
//
// Then the file as a whole: two AppGroups may not have the same name, nor the
// same spec.listen.port, since the standalone agent serves them all on one
// host.
//
// # Differences from the API server
//
// spec.app.root may be relative in a file: it is resolved against the
// directory of the file (for Parse, the baseDir argument) before validation,
// so `root: .` next to passenger_wsgi.py works. The CRD's `^/` pattern still
// applies to what results, and an absolute root is kept as written. Parse
// with an empty baseDir leaves a relative root alone, and it is rejected as
// the server would reject it.
//
// spec.app.env[].valueFrom is refused: the standalone agent has no API
// server to read a Secret or ConfigMap from.
//
// metadata.namespace defaults to "default". A namespace that is set is kept
// and validated, but does not separate AppGroups: names and ports must be
// unique in the whole file.
//
// To report everything at once, unknown fields come with the other errors
// (the server stops at the first decoding error), metadata errors do not keep
// the CEL rules from running, and errors are sorted by field. The messages
// themselves are the server's, word for word.
//
// # Errors
//
// Load and Parse return either every AppGroup of the input or none. The error
// (an *Error) then lists every problem of every bad document, each naming
// the object and the field in the API server's words. One problem is one
// line naming the input:
//
//	hello.yaml: AppGroup "hello": unknown field "spec.pool.maxProcess"
//
// Several are one error: a line naming the input, then one indented line
// for each problem, so that the whole reads as one error after the
// "ferry-agent: " of the command line, or in a log entry's error field:
//
//	hello.yaml: 3 problems:
//	  AppGroup "hello": spec.pool.minProcesses: Invalid value: minProcesses (7) must be less than or equal to maxProcesses (6, its default when not set): lower minProcesses or raise maxProcesses
//	  AppGroup "hello": unknown field "spec.pool.maxProcess"
//	  document 2 (line 14): kind: Invalid value: "ProcessPool": must be AppGroup
//
// An object is named by its metadata.name; one without a usable name, of
// the wrong kind, or repeating an earlier name, by its position and the line
// where its content starts. Field errors are *field.Error values wrapped in
// the *Error, for errors.As.
package appfile
