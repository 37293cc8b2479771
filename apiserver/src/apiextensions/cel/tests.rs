//! Table-driven tests of the CEL validator: compilation, evaluation along
//! the schema, transition rules, messages and reasons, the libraries, the
//! cost limits, and inputs that must not panic.

use super::*;
use serde_json::json;

fn schema(s: Json) -> JSONSchemaProps {
    serde_json::from_value(s).expect("schema")
}

fn validator(s: Json) -> Validator {
    match Validator::new(&schema(s), "") {
        Ok(v) => v,
        Err(errs) => panic!("compile errors: {}", strings(&errs).join("; ")),
    }
}

fn strings(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn run(s: &Json, new: Json, old: Option<Json>) -> Vec<String> {
    strings(&validator(s.clone()).validate(&new, old.as_ref(), ""))
}

/// A root object schema with one property `spec` of schema `spec`.
fn with_spec(spec: Json) -> Json {
    json!({"type": "object", "properties": {"spec": spec}})
}

/// `spec` is an object with the given properties and rules.
fn spec_rules(props: Json, rules: Json) -> Json {
    with_spec(json!({
        "type": "object",
        "properties": props,
        "x-kubernetes-validations": rules,
    }))
}

fn compile_errors(s: Json) -> Vec<String> {
    match Validator::new(&schema(s), "spec.versions[0].schema.openAPIV3Schema") {
        Ok(_) => vec![],
        Err(errs) => strings(&errs),
    }
}

#[test]
fn rules_on_each_kind_of_node() {
    let cases: Vec<(&str, Json, Json, Vec<&str>)> = vec![
        (
            "root rule passes",
            json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.spec.a < 10"}],
                   "properties": {"spec": {"type": "object", "properties": {"a": {"type": "integer"}}}}}),
            json!({"spec": {"a": 1}}),
            vec![],
        ),
        (
            "root rule fails with the default message",
            json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.spec.a < 10"}],
                   "properties": {"spec": {"type": "object", "properties": {"a": {"type": "integer"}}}}}),
            json!({"spec": {"a": 11}}),
            vec![": Invalid value: \"object\": failed rule: self.spec.a < 10"],
        ),
        (
            "nested object",
            spec_rules(
                json!({"a": {"type": "integer"}, "b": {"type": "integer"}}),
                json!([{"rule": "self.a <= self.b", "message": "a must not exceed b"}]),
            ),
            json!({"spec": {"a": 3, "b": 2}}),
            vec!["spec: Invalid value: \"object\": a must not exceed b"],
        ),
        (
            "scalar property",
            spec_rules(
                json!({"name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('x-')"}]}}),
                json!([]),
            ),
            json!({"spec": {"name": "y"}}),
            vec!["spec.name: Invalid value: \"string\": failed rule: self.startsWith('x-')"],
        ),
        (
            "list items",
            spec_rules(
                json!({"ports": {"type": "array", "items": {"type": "integer",
                "x-kubernetes-validations": [{"rule": "self > 0 && self < 65536"}]}}}),
                json!([]),
            ),
            json!({"spec": {"ports": [80, 0, 70000]}}),
            vec![
                "spec.ports[1]: Invalid value: \"integer\": failed rule: self > 0 && self < 65536",
                "spec.ports[2]: Invalid value: \"integer\": failed rule: self > 0 && self < 65536",
            ],
        ),
        (
            "map values",
            spec_rules(
                json!({"labels": {"type": "object", "additionalProperties": {"type": "string",
                "x-kubernetes-validations": [{"rule": "size(self) <= 3"}]}}}),
                json!([]),
            ),
            json!({"spec": {"labels": {"a": "ok", "b": "toolong"}}}),
            vec!["spec.labels[b]: Invalid value: \"string\": failed rule: size(self) <= 3"],
        ),
        (
            "rule on the map itself sees keys",
            spec_rules(
                json!({"labels": {"type": "object", "additionalProperties": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "self.all(k, k.startsWith('a'))"}]}}),
                json!([]),
            ),
            json!({"spec": {"labels": {"a": "1", "b": "2"}}}),
            vec![
                "spec.labels: Invalid value: \"object\": failed rule: self.all(k, k.startsWith('a'))",
            ],
        ),
        (
            "list of objects",
            spec_rules(
                json!({"items": {"type": "array", "items": {"type": "object",
                "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.size > 0", "messageExpression": "self.name + ' needs a size'"}]}}}),
                json!([]),
            ),
            json!({"spec": {"items": [{"name": "a", "size": 1}, {"name": "b", "size": 0}]}}),
            vec!["spec.items[1]: Invalid value: \"object\": b needs a size"],
        ),
        (
            "null values are not validated",
            spec_rules(
                json!({"a": {"type": "string", "nullable": true, "x-kubernetes-validations": [{"rule": "self == 'x'"}]}}),
                json!([]),
            ),
            json!({"spec": {"a": null}}),
            vec![],
        ),
        (
            "allOf rules apply to the same value",
            with_spec(
                json!({"type": "object", "properties": {"a": {"type": "integer"}},
                "allOf": [{"x-kubernetes-validations": [{"rule": "self.a != 2"}]}]}),
            ),
            json!({"spec": {"a": 2}}),
            vec!["spec: Invalid value: \"object\": failed rule: self.a != 2"],
        ),
    ];
    for (name, s, obj, want) in cases {
        assert_eq!(run(&s, obj, None), want, "{name}");
    }
}

#[test]
fn messages_reasons_and_field_paths() {
    let props = json!({"a": {"type": "integer"}, "m": {"type": "object", "additionalProperties": {"type": "string"}}});
    let cases: Vec<(&str, Json, Vec<&str>)> = vec![
        (
            "message is trimmed",
            json!({"rule": "false", "message": "  bad a  "}),
            vec!["spec: Invalid value: \"object\": bad a"],
        ),
        (
            "messageExpression",
            json!({"rule": "self.a > 5", "messageExpression": "'a is ' + string(self.a)"}),
            vec!["spec: Invalid value: \"object\": a is 1"],
        ),
        (
            "messageExpression failing falls back to the message",
            json!({"rule": "self.a > 5", "message": "fallback", "messageExpression": "string(1/0)"}),
            vec!["spec: Invalid value: \"object\": fallback"],
        ),
        (
            "empty messageExpression result falls back to the default",
            json!({"rule": "self.a > 5", "messageExpression": "'  '"}),
            vec!["spec: Invalid value: \"object\": failed rule: self.a > 5"],
        ),
        (
            "messageExpression with a line break falls back",
            json!({"rule": "self.a > 5", "message": "m", "messageExpression": "'x\\ny'"}),
            vec!["spec: Invalid value: \"object\": m"],
        ),
        (
            "FieldValueForbidden",
            json!({"rule": "false", "message": "no", "reason": "FieldValueForbidden"}),
            vec!["spec: Forbidden: no"],
        ),
        (
            "FieldValueRequired",
            json!({"rule": "false", "message": "need", "reason": "FieldValueRequired"}),
            vec!["spec: Required value: need"],
        ),
        (
            "FieldValueDuplicate",
            json!({"rule": "false", "message": "dup", "reason": "FieldValueDuplicate"}),
            vec!["spec: Duplicate value: \"object\""],
        ),
        (
            "FieldValueInvalid",
            json!({"rule": "false", "message": "inv", "reason": "FieldValueInvalid"}),
            vec!["spec: Invalid value: \"object\": inv"],
        ),
        (
            "fieldPath to a property",
            json!({"rule": "false", "fieldPath": ".a"}),
            vec!["spec.a: Invalid value: \"object\": failed rule: false"],
        ),
        (
            "fieldPath to a map key",
            json!({"rule": "false", "fieldPath": ".m['k.x']"}),
            vec!["spec.m[k.x]: Invalid value: \"object\": failed rule: false"],
        ),
    ];
    for (name, rule, want) in cases {
        let s = spec_rules(props.clone(), json!([rule]));
        assert_eq!(
            run(&s, json!({"spec": {"a": 1, "m": {}}}), None),
            want,
            "{name}"
        );
    }
}

#[test]
fn transition_rules() {
    let immutable = spec_rules(
        json!({"a": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "a is immutable"}]}}),
        json!([]),
    );
    let map_list = spec_rules(
        json!({"items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "v": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.v >= oldSelf.v", "message": "v may only grow"}]}}}),
        json!([]),
    );
    let optional = spec_rules(
        json!({"n": {"type": "integer", "x-kubernetes-validations": [{
            "rule": "!oldSelf.hasValue() ? self < 5 : self >= oldSelf.value()", "optionalOldSelf": true, "message": "bad n"}]}}),
        json!([]),
    );
    type Case<'a> = (&'a str, &'a Json, Json, Option<Json>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "create skips transition rules",
            &immutable,
            json!({"spec": {"a": "x"}}),
            None,
            vec![],
        ),
        (
            "unchanged",
            &immutable,
            json!({"spec": {"a": "x"}}),
            Some(json!({"spec": {"a": "x"}})),
            vec![],
        ),
        (
            "changed",
            &immutable,
            json!({"spec": {"a": "y"}}),
            Some(json!({"spec": {"a": "x"}})),
            vec!["spec.a: Invalid value: \"string\": a is immutable"],
        ),
        (
            "field newly set has no old value",
            &immutable,
            json!({"spec": {"a": "y"}}),
            Some(json!({"spec": {}})),
            vec![],
        ),
        (
            "map list items correlate by key, whatever their order",
            &map_list,
            json!({"spec": {"items": [{"name": "b", "v": 1}, {"name": "a", "v": 5}, {"name": "c", "v": 0}]}}),
            Some(json!({"spec": {"items": [{"name": "a", "v": 4}, {"name": "b", "v": 2}]}})),
            vec!["spec.items[0]: Invalid value: \"object\": v may only grow"],
        ),
        (
            "optionalOldSelf runs on create",
            &optional,
            json!({"spec": {"n": 7}}),
            None,
            vec!["spec.n: Invalid value: \"integer\": bad n"],
        ),
        (
            "optionalOldSelf on create passes",
            &optional,
            json!({"spec": {"n": 3}}),
            None,
            vec![],
        ),
        (
            "optionalOldSelf on update",
            &optional,
            json!({"spec": {"n": 8}}),
            Some(json!({"spec": {"n": 9}})),
            vec!["spec.n: Invalid value: \"integer\": bad n"],
        ),
    ];
    for (name, s, new, old, want) in cases {
        assert_eq!(run(s, new, old), want, "{name}");
    }
}

#[test]
fn ratcheting_keeps_unchanged_values_valid() {
    let s = spec_rules(
        json!({"a": {"type": "integer", "x-kubernetes-validations": [{"rule": "self < 5"}]},
               "b": {"type": "array", "items": {"type": "integer", "x-kubernetes-validations": [{"rule": "self < 5"}]}}}),
        json!([]),
    );
    let old = json!({"spec": {"a": 9, "b": [7]}});
    assert_eq!(
        run(&s, old.clone(), Some(old.clone())),
        Vec::<String>::new()
    );
    // Items of an atomic list ratchet with their list.
    assert_eq!(
        run(
            &s,
            json!({"spec": {"a": 9, "b": [7, 8]}}),
            Some(old.clone())
        ),
        vec![
            "spec.b[0]: Invalid value: \"integer\": failed rule: self < 5",
            "spec.b[1]: Invalid value: \"integer\": failed rule: self < 5"
        ]
    );
    assert_eq!(
        run(&s, json!({"spec": {"a": 8, "b": [7]}}), Some(old)),
        vec!["spec.a: Invalid value: \"integer\": failed rule: self < 5"]
    );
}

#[test]
fn values_are_typed_by_the_schema() {
    let props = json!({
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "ios": {"x-kubernetes-int-or-string": true},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "day": {"type": "string", "format": "date"},
        "timeout": {"type": "string", "format": "duration"},
        "data": {"type": "string", "format": "byte"},
        "foo-bar": {"type": "string"},
        "namespace": {"type": "string"},
        "opt": {"type": "string"},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "tags": {"type": "array", "items": {"type": "string"}},
    });
    let obj = json!({"spec": {
        "count": 3, "ratio": 1, "ios": "50%", "start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00+02:00",
        "day": "2024-03-01", "timeout": "1m30s", "data": "aGk=", "foo-bar": "x", "namespace": "ns",
        "free": {"any": {"deep": [1, 2.5]}}, "tags": ["a", "b"],
    }});
    let rules = [
        "self.count == 3 && type(self.count) == int",
        "type(self.ratio) == double && self.ratio == 1.0",
        "type(self.ios) == string && self.ios.endsWith('%')",
        "self.end > self.start && self.end - self.start == duration('22h')",
        "self.day.getMonth() == 2",
        "self.timeout == duration('90s')",
        "self.data == b'hi'",
        "self.foo__dash__bar == 'x'",
        "self.__namespace__ == 'ns'",
        "!has(self.opt) && has(self.count)",
        "self.?opt.orValue('dflt') == 'dflt'",
        "self.free.any.deep[1] == 2.5 && self.free.any.deep[0] == 1",
        "self.tags.exists(t, t == 'b') && self.tags.map(t, t + '!') == ['a!', 'b!']",
        "self.tags.filter(t, t != 'a').size() == 1 && self.tags.exists_one(t, t == 'a')",
    ];
    for rule in rules {
        let s = spec_rules(props.clone(), json!([{"rule": rule}]));
        assert_eq!(run(&s, obj.clone(), None), Vec::<String>::new(), "{rule}");
    }
}

#[test]
fn root_sees_type_and_object_meta_only() {
    let s = json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "self.metadata.name.startsWith('a') && self.kind == 'Foo' && self.apiVersion == 'x/v1'"},
        {"rule": "!has(self.metadata.generateName)"},
    ]});
    let obj = json!({"apiVersion": "x/v1", "kind": "Foo", "metadata": {"name": "abc", "labels": {"a": "b"}}});
    assert_eq!(run(&s, obj, None), Vec::<String>::new());
    let labels = json!({"type": "object", "x-kubernetes-validations": [{"rule": "size(self.metadata.labels) > 0"}]});
    let errs = compile_errors(labels);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("undefined field 'labels'"), "{errs:?}");
}

#[test]
fn embedded_resources_see_their_meta() {
    let s = spec_rules(
        json!({"template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-validations": [{"rule": "self.kind == 'Pod' && self.metadata.name == 'p'"}]}}),
        json!([]),
    );
    let obj = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}}}});
    assert_eq!(
        run(&s, obj, None),
        vec![
            "spec.template: Invalid value: \"object\": failed rule: self.kind == 'Pod' && self.metadata.name == 'p'"
        ]
    );
}

#[test]
fn runtime_errors() {
    let props = json!({"a": {"type": "integer"}, "l": {"type": "array", "items": {"type": "integer"}}, "ios": {"x-kubernetes-int-or-string": true}});
    let cases = [
        (
            "self.a == 1",
            "spec: Invalid value: \"object\": no such key: a evaluating rule: self.a == 1",
        ),
        (
            "self.l[3] == 1",
            "spec: Invalid value: \"object\": index out of bounds: 3 evaluating rule: self.l[3] == 1",
        ),
        (
            "1 / (size(self.l) - 1) == 1",
            "spec: Invalid value: \"object\": division by zero evaluating rule: 1 / (size(self.l) - 1) == 1",
        ),
        (
            "self.ios > 1",
            "spec: Invalid value: \"object\": 'no such overload': call arguments did not match a supported operator, function or macro signature for rule: self.ios > 1",
        ),
        (
            "[1].min() == 1 && [].min() == 1",
            "spec: Invalid value: \"object\": min called on empty list evaluating rule: [1].min() == 1 && [].min() == 1",
        ),
        (
            "'abc'.substring(5) == ''",
            "spec: Invalid value: \"object\": index out of range: 5 evaluating rule: 'abc'.substring(5) == ''",
        ),
        (
            "url('../x').getHost() == ''",
            "spec: Invalid value: \"object\": URL parse error during conversion from string: parse \"../x\": invalid URI for request evaluating rule: url('../x').getHost() == ''",
        ),
        (
            "quantity('ten').sign() == 1",
            "spec: Invalid value: \"object\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' evaluating rule: quantity('ten').sign() == 1",
        ),
    ];
    for (rule, want) in cases {
        let s = spec_rules(props.clone(), json!([{"rule": rule}]));
        assert_eq!(
            run(&s, json!({"spec": {"l": [1], "ios": "x"}}), None),
            vec![want],
            "{rule}"
        );
    }
}

#[test]
fn compile_errors_are_reported_at_the_rule() {
    let base =
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0]";
    let props =
        json!({"a": {"type": "integer"}, "l": {"type": "array", "items": {"type": "integer"}}});
    let cases: Vec<(Json, &str)> = vec![
        (
            json!({"rule": "self.a >"}),
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.a >\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:",
        ),
        (
            json!({"rule": "self.b == 1"}),
            "compilation failed: ERROR: <input>:1:5: undefined field 'b'\n | self.b == 1\n | ....^",
        ),
        (
            json!({"rule": "foo == 1"}),
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')",
        ),
        (
            json!({"rule": "self.a.frobnicate()"}),
            "undeclared reference to 'frobnicate' (in container '')",
        ),
        (
            json!({"rule": "self.l.all(x, y > 0)"}),
            "undeclared reference to 'y'",
        ),
        (
            json!({"rule": "self.a + 1"}),
            ": cel expression must evaluate to a bool",
        ),
        (
            json!({"rule": "'yes'"}),
            ": cel expression must evaluate to a bool",
        ),
        (
            json!({"rule": "true", "messageExpression": "42"}),
            "messageExpression: Invalid value: apiextensions.ValidationRule{Rule:\"true\", Message:\"\", MessageExpression:\"42\"",
        ),
        (
            json!({"rule": "true", "messageExpression": "self.a > 1"}),
            "messageExpression must evaluate to a string",
        ),
        (
            json!({"rule": "true", "messageExpression": "'a' +"}),
            "messageExpression compilation failed: ERROR:",
        ),
        (
            json!({"rule": "  "}),
            ".rule: Required value: rule is not specified",
        ),
        (
            json!({"rule": "true", "message": " "}),
            ".message: Invalid value: \" \": message must be non-empty if specified",
        ),
        (
            json!({"rule": "true", "message": "a\nb"}),
            ".message: Invalid value: \"a\nb\": message must not contain line breaks",
        ),
        (
            json!({"rule": "true &&\ntrue"}),
            ".message: Required value: message must be specified if rule contains line breaks",
        ),
        (
            json!({"rule": "true", "messageExpression": " "}),
            ".messageExpression: Required value: messageExpression must be non-empty if specified",
        ),
        (
            json!({"rule": "true", "reason": "Nope"}),
            ".reason: Unsupported value: \"Nope\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"",
        ),
        (
            json!({"rule": "true", "fieldPath": ".b"}),
            ".fieldPath: Invalid value: \".b\": fieldPath must be a valid path",
        ),
        (
            json!({"rule": "true", "fieldPath": "a"}),
            ".fieldPath: Invalid value: \"a\": fieldPath must be a valid path",
        ),
        (
            json!({"rule": "true", "optionalOldSelf": true}),
            ".optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule",
        ),
    ];
    for (rule, want) in cases {
        let errs = compile_errors(spec_rules(props.clone(), json!([rule])));
        assert_eq!(errs.len(), 1, "{rule}: {errs:?}");
        assert!(errs[0].starts_with(base), "{rule}: {}", errs[0]);
        assert!(errs[0].contains(want), "{rule}:\n{}\nwants {want}", errs[0]);
    }
}

#[test]
fn old_self_is_forbidden_under_uncorrelatable_lists() {
    let s = spec_rules(
        json!({"l": {"type": "array", "items": {"type": "integer", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}),
        json!([]),
    );
    assert_eq!(
        compile_errors(s),
        vec![
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[l].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[l]"
        ]
    );
}

#[test]
fn library_functions() {
    let rules = [
        // Kubernetes lists
        "[1, 2, 2, 3].isSorted() && !['b', 'a'].isSorted() && [].isSorted()",
        "[1, 3].sum() == 4 && [1.5, 2.0].sum() == 3.5 && [].sum() == 0",
        "[duration('1m'), duration('1s')].sum() == duration('61s')",
        "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3 && ['b', 'c', 'a'].max() == 'c'",
        "[1, 2, 2, 3].indexOf(2) == 1 && [1, 2, 2, 3].lastIndexOf(2) == 2 && [1].indexOf(5) == -1",
        // Kubernetes regex
        "'abc 123 def 456'.find('[0-9]+') == '123' && 'abc'.find('[0-9]+') == ''",
        "'1 2 3'.findAll('[0-9]') == ['1', '2', '3'] && '1 2 3'.findAll('[0-9]', 2) == ['1', '2']",
        "'abc'.matches('^a.c$')",
        // sets
        "sets.contains([1, 2, 3], [2, 3]) && !sets.contains([1], [2])",
        "sets.equivalent([1, 2], [2, 1, 1]) && sets.intersects([1, 2], [2, 5]) && !sets.intersects([1], [])",
        // quantity
        "quantity('1Gi').isGreaterThan(quantity('1G')) && quantity('500m').isLessThan(quantity('1'))",
        "quantity('1k').asInteger() == 1000 && quantity('1.5').asApproximateFloat() == 1.5",
        "quantity('1.5').isInteger() == false && quantity('-2').sign() == -1",
        "quantity('1').add(quantity('500m')) == quantity('1500m') && quantity('2').sub(1) == quantity('1')",
        "quantity('1Mi').compareTo(quantity('1M')) == 1 && isQuantity('10Gi') && !isQuantity('ten')",
        // urls
        "url('https://user:pass@example.com:80/path?query=val#fragment').getHost() == 'example.com:80'",
        "url('https://[::1]:80/').getHostname() == '::1' && url('https://[::1]/').getHost() == '[::1]'",
        "url('https://example.com:443/').getPort() == '443' && url('/path').getPort() == ''",
        "url('/absolute-path').getScheme() == '' && url('HTTPS://x/').getScheme() == 'https'",
        "url('https://example.com/path with spaces/').getEscapedPath() == '/path%20with%20spaces/'",
        "url('https://example.com').getEscapedPath() == '' && url('https://example.com/a%2Fb').getEscapedPath() == '/a%2Fb'",
        "url('https://example.com/p?k1=a&k2=b&k2=c').getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
        "url('https://example.com/p?key with spaces=value+x').getQuery() == {'key with spaces': ['value x']}",
        "url('https://example.com/path?').getQuery() == {}",
        "isURL('https://example.com') && isURL('/p') && !isURL('https://a:b:c/') && !isURL('../rel') && !isURL('')",
        // strings
        "'TacoCat'.lowerAscii() == 'tacocat' && 'abc'.upperAscii() == 'ABC'",
        "'a,b,c'.split(',') == ['a', 'b', 'c'] && ['a', 'b'].join('-') == 'a-b'",
        "'  x '.trim() == 'x' && 'aaa'.replace('a', 'b', 2) == 'bba'",
        "'hello'.substring(1, 3) == 'el' && 'hello'.indexOf('l') == 2 && 'hello'.lastIndexOf('l') == 3",
        "'%s=%d'.format(['a', 1]) == 'a=1' && 'abc'.charAt(1) == 'b'",
        // standard library bits rules use
        "size('héllo') == 5 && int('42') == 42 && string(1) == '1' && 'abc'.contains('b')",
        "timestamp('2024-01-01T00:00:00Z').getFullYear() == 2024",
        "optional.of(1).value() == 1 && !optional.none().hasValue()",
    ];
    for rule in rules {
        let s = spec_rules(json!({}), json!([{"rule": rule}]));
        assert_eq!(
            run(&s, json!({"spec": {}}), None),
            Vec::<String>::new(),
            "{rule}"
        );
    }
}

#[test]
fn per_call_cost_limit_stops_validation() {
    let s = spec_rules(
        json!({"l": {"type": "array", "items": {"type": "integer"}}}),
        json!([
            {"rule": "self.l.all(a, self.l.all(b, self.l.all(c, a + b + c >= 0)))"},
            {"rule": "false"},
        ]),
    );
    let big: Vec<i64> = (0..200).collect();
    assert_eq!(
        run(&s, json!({"spec": {"l": big}}), None),
        vec![
            "spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.l.all(a, self.l.all(b, self.l.all(c, a + b + c >= 0)))"
        ]
    );
    // The same rule over a short list is cheap.
    assert_eq!(run(&s, json!({"spec": {"l": [1, 2, 3]}}), None).len(), 1);
}

#[test]
fn map_and_filter_cost_stays_linear() {
    // 20k elements through map and filter: quadratic metering would trip
    // the per-call limit.
    let s = spec_rules(
        json!({"l": {"type": "array", "items": {"type": "integer"}}}),
        json!([{"rule": "self.l.map(x, x + 1).filter(x, x > 0).size() == size(self.l)"}]),
    );
    let big: Vec<i64> = (0..20_000).collect();
    assert_eq!(
        run(&s, json!({"spec": {"l": big}}), None),
        Vec::<String>::new()
    );
}

#[test]
fn total_budget_runs_out() {
    let s = spec_rules(
        json!({"l": {"type": "array", "items": {"type": "integer"}}}),
        json!([{"rule": "self.l.all(a, self.l.all(b, a + b >= 0))"}]),
    );
    let v = validator(s);
    let items: Vec<i64> = (0..200).collect();
    let obj = json!({"spec": {"l": items}});
    let mut walk = Walk {
        errs: Vec::new(),
        budget: 1000,
    };
    v.root
        .as_ref()
        .expect("rules")
        .validate(&mut walk, &obj, None, "", false);
    assert_eq!(
        strings(&walk.errs),
        vec![format!("spec: Invalid value: \"object\": {OUT_OF_BUDGET}")]
    );
}

#[test]
fn hostile_input_does_not_panic() {
    let rules = [
        "{",
        "self.",
        "[1,2][5] == 1",
        "1/0 == 1",
        "'a' + 1 == 'a1'",
        "self[0] == 1",
        "Foo{a: 1} == 1",
        "dyn(self) == self",
        "self.l.map(x, x) == [[]]",
        "'x'.matches('(') ",
        "'x'.find('[')  == ''",
        "9223372036854775807 + 1 > 0",
        "-9223372036854775808 / -1 == 0",
        "self.l.all(x, x.y)",
        "has(self.l)",
        "self.?l[?0].orValue(1) == 1",
        "{1: 2, 1: 3}[1] == 2",
        "quantity('1e999999').sign() == 1",
        "type(self) == map",
        "[1, 'a'].min() == 1",
        "[[1], [2]].isSorted()",
        "size(self.m) >= 0",
        "'\\u00ff'.substring(0, 1) == 'ÿ'",
        "'a'.split('', -1) == ['a']",
        "self.m.exists(k, self.m[k] == 1)",
    ];
    let props = json!({"l": {"type": "array", "items": {}}, "m": {"type": "object", "additionalProperties": true}});
    let objects = [
        json!({"spec": {}}),
        json!({"spec": {"l": [1, "a", null, {"y": 1}], "m": {"k": [1]}}}),
        json!({"spec": {"l": "not a list", "m": 5}}),
        json!({"spec": null}),
        json!("scalar root"),
    ];
    for rule in rules {
        let s = spec_rules(
            props.clone(),
            json!([{"rule": rule, "messageExpression": "string(self)"}]),
        );
        let Ok(v) = Validator::new(&schema(s), "") else {
            continue;
        };
        for obj in &objects {
            v.validate(obj, Some(obj), "");
            v.validate(obj, None, "");
        }
    }
}

#[test]
fn schemas_without_rules_are_empty() {
    let v = validator(with_spec(
        json!({"type": "object", "properties": {"a": {"type": "string"}}}),
    ));
    assert!(v.is_empty());
    assert!(
        v.validate(&json!({"spec": {"a": "x"}}), None, "")
            .is_empty()
    );
}

#[test]
fn property_names_escape_as_upstream() {
    let cases = [
        ("foo", Some("foo")),
        ("foo-bar", Some("foo__dash__bar")),
        ("a.b/c", Some("a__dot__b__slash__c")),
        ("a__b", Some("a__underscores__b")),
        ("namespace", Some("__namespace__")),
        ("1a", None),
        ("a b", None),
        ("", None),
    ];
    for (name, want) in cases {
        assert_eq!(shape::escape(name).as_deref(), want, "{name}");
    }
}

#[test]
fn go_durations_parse() {
    let cases = [
        ("1h30m", Some(5_400_000)),
        ("-1.5s", Some(-1500)),
        ("300ms", Some(300)),
        ("0", Some(0)),
        ("1d", None),
        ("", None),
    ];
    for (s, want) in cases {
        assert_eq!(
            shape::parse_go_duration(s).map(|d| d.num_milliseconds()),
            want,
            "{s}"
        );
    }
}

#[test]
fn interpreter_panics_are_errors() {
    // The crate panics on an unspecified expression; no source parses to
    // one, so build it by hand.
    let program = compile::Program::for_tests(cel::common::ast::IdedExpr::default());
    let env = compile::env().expect("env");
    let ctx = Context::with_env(env);
    let (result, _) = program.eval(&ctx, PER_CALL_LIMIT);
    assert_eq!(
        result,
        Err(compile::EvalError::Other("internal error".into()))
    );
}

#[test]
fn validators_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Validator>();
}
