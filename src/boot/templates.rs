//! The boot-loader configuration templates (`netboot-templates/boot/`), compiled in, with a
//! `{{name}}` substitution. An unknown placeholder is a bug in a template, caught by the tests.

/// The template named `name` (file name without `.tmpl`).
pub fn get(name: &str) -> Option<&'static str> {
    Some(match name {
        "pxelinux" => include_str!("../../netboot-templates/boot/pxelinux.tmpl"),
        "pxelinux-localboot" => {
            include_str!("../../netboot-templates/boot/pxelinux-localboot.tmpl")
        }
        "pxelinux-discovery" => {
            include_str!("../../netboot-templates/boot/pxelinux-discovery.tmpl")
        }
        "xnba" => include_str!("../../netboot-templates/boot/xnba.tmpl"),
        "xnba-localboot" => include_str!("../../netboot-templates/boot/xnba-localboot.tmpl"),
        "xnba-elilo" => include_str!("../../netboot-templates/boot/xnba-elilo.tmpl"),
        "xnba-discovery" => include_str!("../../netboot-templates/boot/xnba-discovery.tmpl"),
        "elilo" => include_str!("../../netboot-templates/boot/elilo.tmpl"),
        "grub2" => include_str!("../../netboot-templates/boot/grub2.tmpl"),
        "grub2-localboot" => include_str!("../../netboot-templates/boot/grub2-localboot.tmpl"),
        "yaboot" => include_str!("../../netboot-templates/boot/yaboot.tmpl"),
        "yaboot-localboot" => include_str!("../../netboot-templates/boot/yaboot-localboot.tmpl"),
        "petitboot" => include_str!("../../netboot-templates/boot/petitboot.tmpl"),
        "petitboot-localboot" => {
            include_str!("../../netboot-templates/boot/petitboot-localboot.tmpl")
        }
        _ => return None,
    })
}

/// Replaces every `{{key}}` with its value; placeholders without a value become empty.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) => {
                let key = &after[..j];
                if let Some((_, v)) = vars.iter().find(|(k, _)| *k == key) {
                    out.push_str(v);
                }
                rest = &after[j + 2..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_substitutes_and_keeps_other_text() {
        assert_eq!(
            fill(
                "a {{x}} b {{y}} c ${next-server}",
                &[("x", "1"), ("y", "2")]
            ),
            "a 1 b 2 c ${next-server}"
        );
        assert_eq!(fill("{{missing}}!", &[]), "!");
        assert_eq!(fill("{{open", &[]), "{{open");
    }
}
