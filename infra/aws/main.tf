# An enclave-enabled EC2 instance (the parent), its IAM role, and the KMS key that seals the models.
# The key policy comes from the measurement policy file through infra/tools/kms-policy.ts: the role
# may Decrypt only with an attestation document whose PCR0 (ImageSha384) is a measured image.
# See infra/README.md for the whole walk-through and the rollout of a new image.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_vpc" "default" {
  count   = var.subnet_id == null ? 1 : 0
  default = true
}

data "aws_subnets" "default" {
  count = var.subnet_id == null ? 1 : 0
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default[0].id]
  }
}

data "aws_subnet" "selected" {
  id = var.subnet_id != null ? var.subnet_id : data.aws_subnets.default[0].ids[0]
}

data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

# --- IAM: the parent instance's role. It needs no KMS permission in IAM: the key policy names it.
resource "aws_iam_role" "enclave_host" {
  name = "${var.name}-enclave-host"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

# Shell access through Session Manager instead of SSH keys and an open port 22.
resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.enclave_host.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "enclave_host" {
  name = "${var.name}-enclave-host"
  role = aws_iam_role.enclave_host.name
}

# --- KMS: the model key. Its policy is generated, never edited by hand.
resource "aws_kms_key" "models" {
  description             = "${var.name}: seals enclave models; Decrypt only for measured enclave images"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = file(var.key_policy_file)
  depends_on              = [aws_iam_role.enclave_host]

  lifecycle {
    precondition {
      condition     = strcontains(file(var.key_policy_file), aws_iam_role.enclave_host.arn)
      error_message = "The key policy does not name this deployment's enclave role: regenerate it with --role-arn set to the enclave_role_arn output."
    }
    precondition {
      condition     = strcontains(file(var.key_policy_file), "kms:RecipientAttestation:ImageSha384")
      error_message = "The key policy does not pin an enclave image (kms:RecipientAttestation:ImageSha384): generate it with infra/tools/kms-policy.ts."
    }
  }
}

resource "aws_kms_alias" "models" {
  name          = "alias/${var.name}-models"
  target_key_id = aws_kms_key.models.key_id
}

# --- Network: only the gateway port, only from the allowed ranges.
resource "aws_security_group" "gateway" {
  name        = "${var.name}-gateway"
  description = "teegate gateway"
  vpc_id      = data.aws_subnet.selected.vpc_id

  dynamic "ingress" {
    for_each = length(var.allowed_cidrs) > 0 ? [1] : []
    content {
      description = "gateway"
      from_port   = var.gateway_port
      to_port     = var.gateway_port
      protocol    = "tcp"
      cidr_blocks = var.allowed_cidrs
    }
  }

  egress {
    description = "KMS, package repositories, SSM"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# --- The parent instance, Nitro Enclaves enabled.
resource "aws_instance" "parent" {
  ami                    = data.aws_ssm_parameter.al2023.value
  instance_type          = var.instance_type
  subnet_id              = data.aws_subnet.selected.id
  vpc_security_group_ids = [aws_security_group.gateway.id]
  iam_instance_profile   = aws_iam_instance_profile.enclave_host.name

  enclave_options {
    enabled = true
  }

  metadata_options {
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_size = 40
    encrypted   = true
  }

  user_data = templatefile("${path.module}/user-data.tftpl", {
    enclave_cpus       = var.enclave_cpus
    enclave_memory_mib = var.enclave_memory_mib
  })

  tags = { Name = "${var.name}-parent" }
}
