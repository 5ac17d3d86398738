output "enclave_role_arn" {
  description = "Pass to infra/tools/kms-policy.ts --role-arn."
  value       = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/${var.name}-enclave-host"
}

output "account_id" {
  value = data.aws_caller_identity.current.account_id
}

output "kms_key_arn" {
  value = aws_kms_key.models.arn
}

output "kms_key_alias" {
  value = aws_kms_alias.models.name
}

output "instance_id" {
  value = aws_instance.parent.id
}

output "gateway_url" {
  value = "http://${aws_instance.parent.public_ip}:${var.gateway_port}"
}
