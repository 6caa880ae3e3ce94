// Package admission holds Ferry's admission policies on the users'
// AppGroups (the revision policy and its binding), embedded in the binary,
// so that code which installs them (the local stack) applies the very
// files kustomize applies and the chart copies (make manifests), never a
// hand-kept copy.
package admission

import (
	_ "embed"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

var (
	//go:embed revision_policy.yaml
	revisionPolicy []byte
	//go:embed revision_policy_binding.yaml
	revisionPolicyBinding []byte
)

// RevisionPolicy returns revision_policy.yaml's ValidatingAdmissionPolicy
// and revision_policy_binding.yaml's binding, which refuse an AppGroup
// whose ferry.dev/revision annotation is set or changed to a value the
// manager would not roll. The caller owns the returned objects.
func RevisionPolicy() (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding, error) {
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{}
	if err := yaml.UnmarshalStrict(revisionPolicy, policy); err != nil {
		return nil, nil, fmt.Errorf("config/admission/revision_policy.yaml: %w", err)
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	if err := yaml.UnmarshalStrict(revisionPolicyBinding, binding); err != nil {
		return nil, nil, fmt.Errorf("config/admission/revision_policy_binding.yaml: %w", err)
	}
	return policy, binding, nil
}
