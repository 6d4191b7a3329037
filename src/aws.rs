//! What the filter knows of AWS itself: region names, the partition a region
//! belongs to, where a region's ALB public keys are published, and the shape
//! of an ALB's ARN. Nothing here does I/O.

/// The AWS partitions, each with its own key hosts and ARN prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// The commercial regions (`aws`).
    Standard,
    /// GovCloud (`aws-us-gov`): keys are published on S3.
    UsGov,
    /// China (`aws-cn`): AWS documents no public key host.
    China,
}

impl Partition {
    /// The partition a region name belongs to (the name is assumed checked
    /// with [`is_region`]).
    pub fn of_region(region: &str) -> Partition {
        if region.starts_with("us-gov-") {
            Partition::UsGov
        } else if region.starts_with("cn-") {
            Partition::China
        } else {
            Partition::Standard
        }
    }

    /// The partition's name as written in an ARN.
    pub fn arn_name(self) -> &'static str {
        match self {
            Partition::Standard => "aws",
            Partition::UsGov => "aws-us-gov",
            Partition::China => "aws-cn",
        }
    }
}

/// `<area>-<place>-<digits>` and longer (`us-east-1`, `us-gov-west-1`,
/// `ap-southeast-5`): lower-case letters and digits between dashes, the last
/// part digits. The name ends up in a host name, so nothing else gets in.
pub fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Where a region's ALB public keys live: the key of id `kid` is
/// `https://<authority><path_prefix><kid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLocation {
    /// `None` where AWS documents no host (China): it must be configured.
    pub authority: Option<String>,
    pub path_prefix: String,
}

/// The key location AWS documents for `region`.
pub fn key_location(region: &str) -> KeyLocation {
    match Partition::of_region(region) {
        Partition::Standard => KeyLocation {
            authority: Some(format!("public-keys.auth.elb.{region}.amazonaws.com")),
            path_prefix: "/".to_owned(),
        },
        Partition::UsGov => KeyLocation {
            authority: Some(format!("s3-{region}.amazonaws.com")),
            path_prefix: format!("/aws-elb-public-keys-prod-{region}/"),
        },
        Partition::China => KeyLocation {
            authority: None,
            path_prefix: "/".to_owned(),
        },
    }
}

/// An ALB's ARN, split into the parts the filter can reason about:
/// `arn:<partition>:elasticloadbalancing:<region>:<account>:<resource>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlbArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> AlbArn<'a> {
    /// `None` unless `arn` has the six parts of an Elastic Load Balancing ARN,
    /// none of them empty. The token's `signer` is compared with the whole
    /// string, so this only catches what could never match a real signer.
    pub fn parse(arn: &'a str) -> Option<AlbArn<'a>> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("elasticloadbalancing")) =
            (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let (Some(region), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let parsed = AlbArn {
            partition,
            region,
            account,
            resource,
        };
        [partition, region, account, resource]
            .iter()
            .all(|part| !part.is_empty())
            .then_some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for good in ["us-east-1", "us-gov-west-1", "cn-north-1", "ap-southeast-5"] {
            assert!(is_region(good), "{good}");
        }
        for bad in [
            "",
            "nowhere",
            "us-east",
            "us-east-x",
            "US-EAST-1",
            "us--east-1",
            "us-east-1.evil.com",
            "us-east-1/",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn partitions() {
        assert_eq!(Partition::of_region("eu-west-1"), Partition::Standard);
        assert_eq!(Partition::of_region("us-gov-east-1"), Partition::UsGov);
        assert_eq!(Partition::of_region("cn-northwest-1"), Partition::China);
        assert_eq!(Partition::UsGov.arn_name(), "aws-us-gov");
        assert_eq!(Partition::China.arn_name(), "aws-cn");
        assert_eq!(Partition::Standard.arn_name(), "aws");
    }

    #[test]
    fn key_locations() {
        assert_eq!(
            key_location("eu-central-1"),
            KeyLocation {
                authority: Some("public-keys.auth.elb.eu-central-1.amazonaws.com".into()),
                path_prefix: "/".into(),
            }
        );
        assert_eq!(
            key_location("us-gov-east-1"),
            KeyLocation {
                authority: Some("s3-us-gov-east-1.amazonaws.com".into()),
                path_prefix: "/aws-elb-public-keys-prod-us-gov-east-1/".into(),
            }
        );
        assert_eq!(key_location("cn-north-1").authority, None);
    }

    #[test]
    fn alb_arns() {
        let arn = "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:loadbalancer/app/demo/50dc6c495c0c9188";
        assert_eq!(
            AlbArn::parse(arn),
            Some(AlbArn {
                partition: "aws-us-gov",
                region: "us-gov-west-1",
                account: "123456789012",
                resource: "loadbalancer/app/demo/50dc6c495c0c9188",
            })
        );
        for bad in [
            "",
            "arn:",
            "arn:aws:elasticloadbalancing:x",
            "arn:aws:s3:::bucket",
            "arn:aws:elasticloadbalancing::123456789012:loadbalancer/app/a/1",
            "arn:aws:elasticloadbalancing:us-east-1::loadbalancer/app/a/1",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:",
            "arn::elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/a/1",
            "ARN:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/a/1",
        ] {
            assert_eq!(AlbArn::parse(bad), None, "{bad}");
        }
    }
}
