package appfile

import (
	"fmt"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/ferry-dev/ferry/api/v1alpha1"
	"github.com/ferry-dev/ferry/config/crd"
)

// crdSchema is everything the API server derives from a CRD version's schema
// to decode, default and validate a custom resource.
type crdSchema struct {
	// structural drives pruning, defaulting and list-map validation.
	structural *structuralschema.Structural
	// openAPI validates types, bounds, patterns, enums and required fields.
	openAPI apiservervalidation.SchemaValidator
	// cel holds the compiled x-kubernetes-validations rules; nil if none.
	cel *cel.Validator
}

// appGroupSchema builds the AppGroup schema once: compiling the CEL rules
// takes a few milliseconds.
var appGroupSchema = sync.OnceValues(func() (*crdSchema, error) {
	def, err := crd.ByKind(kindAppGroup)
	if err != nil {
		return nil, err
	}
	return newCRDSchema(def, v1alpha1.GroupVersion.Version)
})

// newCRDSchema does for one version of def what the API server's
// custom-resource handler does when it starts serving it (see
// k8s.io/apiextensions-apiserver/pkg/apiserver/customresource_handler.go).
func newCRDSchema(def *apiextensionsv1.CustomResourceDefinition, version string) (*crdSchema, error) {
	var validation *apiextensionsv1.CustomResourceValidation
	for i := range def.Spec.Versions {
		if def.Spec.Versions[i].Name == version {
			validation = def.Spec.Versions[i].Schema
		}
	}
	if validation == nil || validation.OpenAPIV3Schema == nil {
		return nil, fmt.Errorf("CRD %s has no schema for version %s", def.Name, version)
	}
	internal := &apiextensions.CustomResourceValidation{}
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(validation, internal, nil); err != nil {
		return nil, fmt.Errorf("CRD %s: converting the schema: %w", def.Name, err)
	}
	s, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("CRD %s: schema is not structural: %w", def.Name, err)
	}
	// The server prunes unknown fields out of defaults before using them.
	s = s.DeepCopy()
	if err := structuraldefaulting.PruneDefaults(s); err != nil {
		return nil, fmt.Errorf("CRD %s: pruning defaults: %w", def.Name, err)
	}
	openAPI, _, err := apiservervalidation.NewSchemaValidator(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("CRD %s: building the validator: %w", def.Name, err)
	}
	return &crdSchema{
		structural: s,
		openAPI:    openAPI,
		// The server's per-expression limit; Validate gets the per-object
		// budget, celconfig.RuntimeCELCostBudget.
		cel: cel.NewValidator(s, true, celconfig.PerCallLimit),
	}, nil
}
