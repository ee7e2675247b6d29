"""Initial schema: clinic, practitioner, patient, visit, photo, analysis, comparison, audit log.

Revision ID: 0001
Revises: 
Create Date: 2026-11-28

Every table of the first release.  Written so it runs on SQLite and
PostgreSQL; it does not import the models (they follow the newest revision).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=True),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('details', JSON, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_patient_id_at', 'audit_log', ['patient_id', 'at'])

    op.create_table('clinic',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clinic')),
    sa.UniqueConstraint('name', name=op.f('uq_clinic_name'))
    )
    op.create_table('patient',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('skin_type', sa.String(length=8), nullable=True),
    sa.Column('consent', sa.Boolean(), nullable=False),
    sa.Column('consent_date', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], name=op.f('fk_patient_clinic_id_clinic'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient')),
    sa.UniqueConstraint('code', name=op.f('uq_patient_code'))
    )
    op.create_table('practitioner',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id'], name=op.f('fk_practitioner_clinic_id_clinic'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_practitioner'))
    )
    op.create_table('visit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('practitioner_id', sa.Integer(), nullable=True),
    sa.Column('visit_date', sa.Date(), nullable=False),
    sa.Column('procedure', sa.String(length=200), nullable=True),
    sa.Column('device', sa.String(length=200), nullable=True),
    sa.Column('needle_depth_mm', sa.Float(), nullable=True),
    sa.Column('passes', sa.Integer(), nullable=True),
    sa.Column('serum', sa.String(length=200), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('post_care', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_visit_patient_id_patient'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioner.id'], name=op.f('fk_visit_practitioner_id_practitioner'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit'))
    )
    op.create_index(op.f('ix_visit_patient_id'), 'visit', ['patient_id'])

    op.create_table('photo',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('blob_key', sa.String(length=200), nullable=False),
    sa.Column('media_type', sa.String(length=40), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sanitize_method', sa.String(length=40), nullable=False),
    sa.Column('view', sa.String(length=20), nullable=False),
    sa.Column('captured_at', sa.DateTime(), nullable=True),
    sa.Column('camera', sa.String(length=200), nullable=True),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('orientation', sa.Integer(), nullable=False),
    sa.Column('source_format', sa.String(length=20), nullable=False),
    sa.Column('capture', JSON, nullable=False),
    sa.Column('skin_condition', sa.String(length=20), nullable=True),
    sa.Column('lighting', sa.String(length=200), nullable=True),
    sa.Column('camera_setup', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_photo_patient_id_patient'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], name=op.f('fk_photo_visit_id_visit'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photo')),
    sa.UniqueConstraint('patient_id', 'sha256', name='uq_photo_patient_id_sha256')
    )
    op.create_index(op.f('ix_photo_patient_id'), 'photo', ['patient_id'])
    op.create_index(op.f('ix_photo_sha256'), 'photo', ['sha256'])
    op.create_index(op.f('ix_photo_source_sha256'), 'photo', ['source_sha256'])
    op.create_index(op.f('ix_photo_visit_id'), 'photo', ['visit_id'])

    op.create_table('analysis',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('photo_id', sa.Integer(), nullable=False),
    sa.Column('algorithm_version', sa.String(length=40), nullable=False),
    sa.Column('settings_key', sa.String(length=16), nullable=False),
    sa.Column('settings', JSON, nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('result', JSON, nullable=True),
    sa.Column('quality_overall', sa.String(length=10), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['photo_id'], ['photo.id'], name=op.f('fk_analysis_photo_id_photo'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analysis')),
    sa.UniqueConstraint('photo_id', 'algorithm_version', 'settings_key', name='uq_analysis_photo_version_settings')
    )
    op.create_index(op.f('ix_analysis_photo_id'), 'analysis', ['photo_id'])

    op.create_table('comparison',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('baseline_photo_id', sa.Integer(), nullable=False),
    sa.Column('followup_photo_id', sa.Integer(), nullable=False),
    sa.Column('algorithm_version', sa.String(length=40), nullable=False),
    sa.Column('result', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['baseline_photo_id'], ['photo.id'], name=op.f('fk_comparison_baseline_photo_id_photo'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['followup_photo_id'], ['photo.id'], name=op.f('fk_comparison_followup_photo_id_photo'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], name=op.f('fk_comparison_patient_id_patient'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comparison'))
    )
    op.create_index(op.f('ix_comparison_patient_id'), 'comparison', ['patient_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_comparison_patient_id'), table_name='comparison')

    op.drop_table('comparison')
    op.drop_index(op.f('ix_analysis_photo_id'), table_name='analysis')

    op.drop_table('analysis')
    op.drop_index(op.f('ix_photo_visit_id'), table_name='photo')
    op.drop_index(op.f('ix_photo_source_sha256'), table_name='photo')
    op.drop_index(op.f('ix_photo_sha256'), table_name='photo')
    op.drop_index(op.f('ix_photo_patient_id'), table_name='photo')

    op.drop_table('photo')
    op.drop_index(op.f('ix_visit_patient_id'), table_name='visit')

    op.drop_table('visit')
    op.drop_table('practitioner')
    op.drop_table('patient')
    op.drop_table('clinic')
    op.drop_index('ix_audit_log_patient_id_at', table_name='audit_log')

    op.drop_table('audit_log')
